"""Deterministic batch-system simulators: payload text in exactly the real formats, from (now, seed).

A day has a cycle (jobs peak in the afternoon), one Slurm node drains over six hours and refills,
and the tape library builds a read backlog by day and works it off at night. The same (now, seed)
always gives the same text, so demos and tests are reproducible.
"""

from __future__ import annotations

import json
import math
import random
import time
from typing import Any

DAY = 86400.0
WEEK = 7 * DAY


def _rng(now: float, seed: int, salt: str) -> random.Random:
    return random.Random(f"{seed}:{salt}:{int(now // 60)}")


def daily(now: float, peak_hour: float = 15.0) -> float:
    """0..1, highest at ``peak_hour`` UTC, lowest twelve hours later."""
    return 0.5 + 0.5 * math.cos(2 * math.pi * ((now % DAY) / 3600.0 - peak_hour) / 24.0)


def _condor_json(ads: list[dict[str, Any]]) -> str:
    """condor_status/condor_q -json framing: empty output for no ads; expressions as "\\/Expr(..)\\/"."""
    if not ads:
        return ""
    bodies = [json.dumps(ad, indent=2).replace('"/Expr(', '"\\/Expr(').replace(')/"', ')\\/"') for ad in ads]
    return "[\n" + ",\n".join(bodies) + "\n]\n"


def _slurm_json(doc: dict[str, Any]) -> str:
    """Slurm escapes '/' in strings as '\\/'."""
    return json.dumps(doc, indent=2).replace("/", "\\/") + "\n"


def _env(number: float | None, infinite: bool = False) -> dict[str, Any]:
    return {"set": number is not None, "infinite": infinite, "number": 0 if number is None else number}


# -- HTCondor ------------------------------------------------------------------------------------

SCHEDDS = ("schedd01.example.org", "schedd02.example.org")
GROUPS = ("group_cms", "group_atlas", "group_dune")
WORKERS = 8
CORES = 32


def _condor_jobs(now: float, seed: int) -> list[dict[str, Any]]:
    rng = _rng(now, seed, "condor")
    level = daily(now)
    running_target = int(WORKERS * CORES * (0.4 + 0.55 * level))
    idle_target = int(40 + 160 * level)
    jobs = []
    for i in range(running_target + idle_target + rng.randint(0, 4)):
        status = 2 if i < running_target else 1
        if rng.random() < 0.02:
            status = 5
        jobs.append(
            {
                "ClusterId": 100000 + i // 10,
                "ProcId": i % 10,
                "JobStatus": status,
                "Owner": rng.choice(("alice", "bob", "carol")),
                "AcctGroup": GROUPS[i % len(GROUPS)] if i % 17 else None,
                "RequestCpus": 1,
                "MemoryUsage": "/Expr(((ResidentSetSize + 1023) / 1024))/",
                "EnteredCurrentStatus": int(now) - rng.randint(0, 3600),
            }
        )
    return jobs


def condor_jobs(now: float, seed: int = 1) -> str:
    """``condor_q -allusers -json`` over the pool."""
    return _condor_json(_condor_jobs(now, seed))


def condor_schedds(now: float, seed: int = 1) -> str:
    """``condor_status -schedd -json``: totals consistent with :func:`condor_jobs`."""
    jobs = _condor_jobs(now, seed)
    ads = []
    for k, name in enumerate(SCHEDDS):
        mine = [j for i, j in enumerate(jobs) if i % len(SCHEDDS) == k]
        ads.append(
            {
                "Name": name,
                "MyType": "Scheduler",
                "Machine": name,
                "TotalRunningJobs": sum(j["JobStatus"] == 2 for j in mine),
                "TotalIdleJobs": sum(j["JobStatus"] == 1 for j in mine),
                "TotalHeldJobs": sum(j["JobStatus"] == 5 for j in mine),
                "RecentJobsStarted": _rng(now, seed, name).randint(0, 40),
                "RecentJobsCompleted": _rng(now, seed, name + "c").randint(0, 40),
                "RecentDaemonCoreDutyCycle": 2.9e-05 * (1 + k) + 0.01 * daily(now),
            }
        )
    return _condor_json(ads)


def condor_slots(now: float, seed: int = 1) -> str:
    """``condor_status -json``: one partitionable slot per worker plus its dynamic slots."""
    running = sum(j["JobStatus"] == 2 for j in _condor_jobs(now, seed))
    ads = []
    for w in range(WORKERS):
        host = f"wn{w + 1:03d}.example.org"
        used = max(0, min(CORES, running - w * CORES))
        for d in range(used):
            ads.append(_slot(f"slot1_{d + 1}@{host}", host, "Dynamic", "Claimed", "Busy", 1, 2000))
        ads.append(
            _slot(
                f"slot1@{host}",
                host,
                "Partitionable",
                "Unclaimed",
                "Idle",
                CORES - used,
                2000 * (CORES - used),
            )
        )
    return _condor_json(ads)


def _slot(name: str, host: str, kind: str, state: str, activity: str, cpus: int, mem: int) -> dict[str, Any]:
    return {
        "Name": name,
        "Machine": host,
        "SlotType": kind,
        "State": state,
        "Activity": activity,
        "Cpus": cpus,
        "Memory": mem,
        "TotalCpus": CORES,
        "Start": "/Expr((TARGET.RequestCpus <= Cpus))/",
    }


# -- Slurm ---------------------------------------------------------------------------------------

NODES = tuple(f"cn{i:03d}" for i in range(1, 9))
DRAINING = "cn003"
SLURM_META = {
    "plugin": {"type": "", "name": "", "data_parser": "data_parser/v0.0.42", "accounting_storage": ""},
    "client": {"source": "/dev/pts/0", "user": "root", "group": "root"},
    "command": [],
    "slurm": {
        "version": {"major": "24", "micro": "4", "minor": "11"},
        "release": "24.11.4",
        "cluster": "demo",
    },
}


def _node_alloc(now: float, seed: int) -> dict[str, tuple[int, list[str]]]:
    """Allocated CPUs and state of each node; DRAINING empties over six hours, then is back."""
    level = daily(now, 14.0)
    rng = _rng(now, seed, "slurm")
    out = {}
    for i, node in enumerate(NODES):
        alloc = max(0, min(64, int(64 * level * 1.2) - 8 * (i % 3) + rng.randint(-4, 4)))
        state = ["IDLE"] if alloc == 0 else ["ALLOCATED"] if alloc == 64 else ["MIXED"]
        if node == DRAINING:
            phase = (now % 28800) / 21600
            if phase < 1:
                alloc = int(64 * (1 - phase))
                state = (["MIXED"] if alloc else ["IDLE"]) + ["DRAIN"]
        out[node] = (alloc, state)
    return out


def squeue(now: float, seed: int = 1) -> str:
    """``squeue --json`` (24.11 shape)."""
    rng = _rng(now, seed, "squeue")
    alloc = sum(a for a, _ in _node_alloc(now, seed).values())
    jobs = []
    for i in range(alloc // 8 + int(30 * daily(now, 16.0)) + rng.randint(0, 3)):
        running = i < alloc // 8
        jobs.append(
            {
                "account": ("cms", "atlas", "dune")[i % 3],
                "job_id": 500000 + i,
                "job_state": ["RUNNING"] if running else ["PENDING"],
                "partition": "batch" if i % 4 else "batch,long",
                "cpus": _env(8),
                "state_reason": "None" if running else rng.choice(("Priority", "Resources", "Dependency")),
                "time_limit": _env(None, infinite=True) if i % 5 == 0 else _env(2880),
                "job_resources": None if not running else {"cpus": 8},
                "user_name": "alice",
            }
        )
    return _slurm_json({"jobs": jobs, "meta": SLURM_META, "errors": [], "warnings": []})


def _node_entries(now: float, seed: int) -> list[tuple[str, int, list[str]]]:
    return [(n, a, s) for n, (a, s) in _node_alloc(now, seed).items()]


def sinfo(now: float, seed: int = 1) -> str:
    """``sinfo -N --json`` (23.02+ layout: one ``sinfo`` entry per node and partition)."""
    entries = []
    for node, alloc, state in _node_entries(now, seed):
        drain = "DRAIN" in state
        for part in ("batch", "long") if node in NODES[:4] else ("batch",):
            entries.append(
                {
                    "node": {"state": state},
                    "nodes": {
                        "allocated": int(alloc > 0),
                        "idle": int(alloc == 0),
                        "total": 1,
                        "nodes": [node],
                    },
                    "cpus": {
                        "allocated": alloc,
                        "idle": 0 if drain else 64 - alloc,
                        "other": 64 - alloc if drain else 0,
                        "total": 64,
                    },
                    "reason": {"description": "hardware check", "user": "root"} if drain else None,
                    "partition": {"name": part},
                }
            )
    return _slurm_json({"sinfo": entries, "meta": SLURM_META, "errors": [], "warnings": []})


def slurm_nodes(now: float, seed: int = 1) -> str:
    """slurmrestd ``/nodes``."""
    nodes = [
        {
            "name": node,
            "state": state,
            "cpus": 64,
            "alloc_cpus": alloc,
            "alloc_idle_cpus": 64 - alloc,
            "partitions": ["batch", "long"] if node in NODES[:4] else ["batch"],
            "free_mem": _env(1000),
            "gres_drained": "N/A",
        }
        for node, alloc, state in _node_entries(now, seed)
    ]
    return _slurm_json(
        {"nodes": nodes, "last_update": _env(int(now)), "meta": SLURM_META, "errors": [], "warnings": []}
    )


def slurm_partitions(now: float, seed: int = 1) -> str:
    """slurmrestd ``/partitions``."""
    parts = [{"name": p, "partition": {"state": ["UP"]}} for p in ("batch", "long")]
    return _slurm_json({"partitions": parts, "meta": SLURM_META, "errors": [], "warnings": []})


def sdiag(now: float, seed: int = 1) -> str:
    """``sdiag --json``: counters grow through the day and reset at midnight UTC."""
    since_midnight = now % DAY
    rng = _rng(now, seed, "sdiag")
    submitted = int(since_midnight / 30)
    stats = {
        "req_time": _env(int(now)),
        "server_thread_count": rng.randint(1, 6),
        "agent_queue_size": rng.randint(0, 3),
        "agent_count": 0,
        "dbd_agent_queue_size": 0,
        "schedule_cycle_last": rng.randint(80, 4000),
        "schedule_cycle_mean": 900,
        "schedule_cycle_total": int(since_midnight / 60),
        "schedule_queue_length": rng.randint(0, 40),
        "jobs_submitted": submitted,
        "jobs_started": int(submitted * 0.97),
        "jobs_completed": int(submitted * 0.9),
        "jobs_canceled": submitted // 200,
        "jobs_failed": submitted // 500,
        "jobs_pending": rng.randint(0, 40),
        "jobs_running": rng.randint(20, 60),
        "bf_cycle_counter": int(since_midnight / 30),
        "bf_cycle_last": _env(rng.randint(1000, 90000)),
        "bf_queue_len": rng.randint(0, 30),
        "bf_backfilled_jobs": submitted // 7,
        "bf_when_last_cycle": _env(int(now) - 10),
        "bf_active": False,
    }
    return _slurm_json({"statistics": stats, "meta": SLURM_META, "errors": [], "warnings": []})


def slurm_openapi(versions: tuple[str, ...] = ("v0.0.40", "v0.0.41", "v0.0.42")) -> str:
    """A cut-down ``/openapi/v3`` listing the served paths."""
    paths: dict[str, Any] = {
        f"/slurm/{v}/{p}/": {"get": {}} for v in versions for p in ("jobs", "nodes", "partitions", "diag")
    }
    return (
        json.dumps({"openapi": "3.0.2", "info": {"title": "Slurm REST API"}, "paths": paths}, indent=2) + "\n"
    )


# -- Enstore -------------------------------------------------------------------------------------

MOVERS = tuple(f"LTO8_{i}" for i in range(10, 16))


def _backlog(now: float, seed: int, lm: str) -> dict[str, int]:
    """Reads pile up from 08:00 to 18:00 UTC and are worked off overnight."""
    rng = _rng(now, seed, lm)
    hour = (now % DAY) / 3600.0
    build = max(0.0, min(hour, 18.0) - 8.0) * 30
    drain = max(0.0, hour - 18.0) * 75
    return {
        "pending_reads": max(0, int(build - drain)) + rng.randint(0, 3),
        "pending_writes": rng.randint(0, 12),
        "active_reads": min(len(MOVERS) - 2, 1 + int(build / 60)),
        "active_writes": rng.randint(0, 2),
    }


def enstore_get_queue(now: float, seed: int, lm: str) -> str:
    """``enstore library --get-queue "" <lm>`` with Python 2's two spaces after the colon."""
    q = _backlog(now, seed, lm)
    lines = ["Pending write requests", "Active requests"]
    for i in range(min(q["pending_reads"], 5)):
        pnfs, local = f"/pnfs/fs/usr/minos/f{i}.root", f"/data/f{i}.root"
        lines.append(f"fnpc{1000 + i}.fnal.gov {lm} minfarm {pnfs} {local} P 0 None None VOL VR{1200 + i}L8")
    for kind in ("Pending read", "Pending write", "Active read", "Active write"):
        key = kind.lower().replace(" ", "_") + "s"
        lines.append(f"{kind} requests:  {q[key]}")
    return "\n".join(lines) + "\n"


def enstore_queue_length(now: float, seed: int, lm: str) -> str:
    """``enstore library --queue-length <lm>``: one integer."""
    q = _backlog(now, seed, lm)
    return f"{q['pending_reads'] + q['pending_writes']}\n"


def enstore_mover_status(now: float, seed: int, mover: str) -> str:
    """``enstore mover --status``: a pprint'ed Python 2 dict with L suffixes; counters reset weekly."""
    name = mover.removesuffix(".mover")
    k = MOVERS.index(name) if name in MOVERS else 0
    up = now % WEEK + 3600 * k
    active = _backlog(now, seed, "LTO8.library_manager")["active_reads"]
    state = "ACTIVE" if k < active else "OFFLINE" if k == len(MOVERS) - 1 else "IDLE"
    return (
        f"{{'bytes_read': {int(up * 180e6 * 0.4)}L,\n 'bytes_written': {int(up * 180e6 * 0.2)}L,\n"
        f" 'current_volume': 'VR{1200 + k}L8',\n 'drive_id': 'ULT3580-TD8',\n 'state': '{state}',\n"
        f" 'status': ('ok', None),\n 'time_in_state': {up % 600:.1f},\n"
        f" 'transfers_completed': {int(up / 45)},\n 'transfers_failed': {int(up / 86400)}}}\n"
    )


def enstore_config(now: float, seed: int = 1) -> str:
    """``enstore config --show``: the movers and their library."""
    entries = [
        f" '{m}.mover': {{'host': 'stkenmvr{i}a', 'library': 'LTO8.library_manager', 'port': {7800 + i}L}}"
        for i, m in enumerate(MOVERS)
    ]
    return "{'LTO8.library_manager': {'host': 'stkensrv3n', 'port': 7520L},\n" + ",\n".join(entries) + "}\n"


def enstore_status_only(now: float, seed: int = 1) -> str:
    """``enstore_status_only.py``: up, with a warning for an hour each afternoon."""
    code = 2 if 15 <= (now % DAY) / 3600.0 < 16 else 0
    stamp = time.strftime("%Y-%b-%d %H:%M:%S", time.gmtime(now))
    return f"status=[{code}, '{stamp}', -1, -1, -1, 'www-stken.fnal.gov']\n"

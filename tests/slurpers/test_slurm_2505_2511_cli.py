"""The Slurm slurper on ``sinfo/squeue/sdiag/scontrol --json`` printed by real Slurm 25.05.8 and 25.11.7.

``tests/data/slurm/2505/loopback/`` and ``2511/loopback/`` were captured from one-host clusters of
those releases, built from SchedMD's source and run on loopback, with the same nodes and jobs
(``tests/data/slurm/README.md`` says how). Both releases printed the same node, CPU and job figures, so
those cases run on both; sdiag's timings differ. Every expected figure is counted by hand from the files,
as the comments show.

The cluster: nodes n1-n6 with 4 CPUs each; partitions ``batch`` (n[1-5], the default) and ``debug``
(n[3-6]). First capture (no suffix): n1 ALLOCATED 4/0/0/4 (CPUs allocated/idle/other/total, as sinfo
prints them), n2 MIXED 2/2/0/4, n3 MIXED+DRAIN 1/0/3/4 (draining), n4 IDLE+DRAIN 0/0/4/4 (drained), n5
never started UNKNOWN+NOT_RESPONDING 0/4/0/4, n6 FUTURE 0/4/0/4 (listed only by ``sinfo --future``).
Second capture (``_later``): n5 set DOWN 0/0/4/4, n4 resumed and allocated to job 6 (4/0/0/4).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slurpers import slurm_parse as sp
from slurpers.api import PayloadError, Reading
from tests.slurpers.conftest import DATA, Fakes

RELEASES = {"2505": ("25.05.8", (25, 5, 8), "v0.0.43"), "2511": ("25.11.7", (25, 11, 7), "v0.0.44")}
both = pytest.mark.parametrize("release", sorted(RELEASES))


def folder(release: str) -> Path:
    return DATA / "slurm" / release / "loopback"


def values(readings: list[Reading]) -> dict[str, float | None]:
    return {r.metric: r.value for r in readings}


def doc(release: str, name: str) -> dict[str, Any]:
    return sp.load((folder(release) / name).read_text(encoding="utf-8"), name)


def sinfo_text_cpus(release: str, name: str) -> dict[str, float]:
    """CPUS(A/I/O/T) of ``sinfo -N -o "%N %P %T %C"``, each node once: sinfo's own figures."""
    per_node: dict[str, list[float]] = {}
    for line in (folder(release) / name).read_text(encoding="utf-8").splitlines()[1:]:
        node, _partition, _state, cpus = line.split()
        per_node[node] = [float(x) for x in cpus.split("/")]
    sums = [sum(col) for col in zip(*per_node.values(), strict=True)]
    return dict(zip(("cpus.allocated", "cpus.idle", "cpus.other", "cpus.total"), sums, strict=True))


JSON_FILES = [
    ("sinfo.json", ["sinfo"]),
    ("sinfo_N.json", ["sinfo", "-N"]),
    ("squeue.json", ["squeue"]),
    ("sdiag.json", ["sdiag"]),
    ("scontrol_show_node.json", ["show"]),
    ("sinfo_later.json", ["sinfo"]),
    ("sinfo_N_later.json", ["sinfo", "-N"]),
    ("sinfo_N_future_later.json", ["sinfo", "-N", "--future"]),
    ("squeue_later.json", ["squeue"]),
    ("sdiag_later.json", ["sdiag"]),
    ("scontrol_show_node_later.json", ["show"]),
]


@both
@pytest.mark.parametrize(("name", "command"), JSON_FILES)
def test_each_payload_says_its_release_and_command(release: str, name: str, command: list[str]) -> None:
    """The files are what the README says: Slurm wrote its release, data_parser and argv into each."""
    text, (slurm, _, parser) = (folder(release) / name).read_text(encoding="utf-8"), RELEASES[release]
    meta = json.loads(text)["meta"]
    assert meta["slurm"]["release"] == slurm
    assert meta["slurm"]["cluster"] == f"rexmon{release}"
    assert meta["plugin"]["data_parser"] == f"data_parser/{parser}"
    assert meta["command"] == command
    assert sp.load(text, name)  # errors is empty


@both
def test_sdiag_version_names_a_release_with_sdiag_json(release: str) -> None:
    for command in ("sinfo", "squeue", "sdiag", "scontrol"):
        said = sp.release((folder(release) / f"{command}_version.txt").read_text(encoding="utf-8"))
        assert said == RELEASES[release][1]
    assert RELEASES[release][1] >= sp.SDIAG_JSON_SINCE


@both
@pytest.mark.parametrize(
    "name",
    ["sinfo.json", "sinfo_N.json", "sinfo_later.json", "sinfo_N_later.json", "sinfo_N_future_later.json"],
)
def test_every_sinfo_entry_has_nodes_total(release: str, name: str) -> None:
    """Both releases write ``nodes.total`` into every entry, grouped or not (the 25.05 report of entries
    without it is not reproduced here; the parser still handles such an entry, see test_slurm_real.py)."""
    entries = doc(release, name)["sinfo"]
    assert entries and all(e["nodes"]["total"] == len(e["nodes"]["nodes"]) for e in entries)


FIRST = {
    # n1 ALLOCATED; n2, n3 MIXED; n4 IDLE (+DRAIN); n5 UNKNOWN (+NOT_RESPONDING); n6 FUTURE not listed
    "nodes.allocated": 1,
    "nodes.mixed": 2,
    "nodes.idle": 1,
    "nodes.unknown": 1,
    "nodes.down": 0,
    "nodes.future": 0,
    "nodes.total": 5,
    "nodes.flag.drain": 2,  # n3, n4
    "nodes.flag.not_responding": 1,  # n5
    "nodes.draining": 1,  # n3 runs job 3
    "nodes.drained": 1,  # n4 runs nothing
    "cpus.allocated": 7,  # n1 4 + n2 2 + n3 1
    "cpus.idle": 6,  # n2 2 + n5 4 (UNKNOWN is neither DOWN nor DRAIN)
    "cpus.other": 7,  # n3 3 + n4 4 (DRAIN)
    "cpus.total": 20,
}
LATER = {
    # n1, n4 ALLOCATED; n2, n3 MIXED; n5 DOWN (+NOT_RESPONDING)
    "nodes.allocated": 2,
    "nodes.mixed": 2,
    "nodes.idle": 0,
    "nodes.unknown": 0,
    "nodes.down": 1,
    "nodes.future": 0,
    "nodes.total": 5,
    "nodes.flag.drain": 1,  # n3
    "nodes.flag.not_responding": 1,  # n5
    "nodes.draining": 1,
    "nodes.drained": 0,
    "cpus.allocated": 11,  # 4 + 2 + 1 + 4
    "cpus.idle": 2,  # n2
    "cpus.other": 7,  # n3 3 + n5 4 (DOWN)
    "cpus.total": 20,
}
# sinfo --future adds n6, FUTURE 0/4/0/4: its CPUs are idle, as sinfo counts them
LATER_FUTURE = LATER | {"nodes.future": 1, "nodes.total": 6, "cpus.idle": 6, "cpus.total": 24}


@both
@pytest.mark.parametrize(
    ("name", "expected", "text"),
    [
        ("sinfo_N.json", FIRST, "sinfo_N_cpus.txt"),
        # plain sinfo: one entry per partition and state; here every group has one node
        ("sinfo.json", FIRST, "sinfo_N_cpus.txt"),
        # the slurmrestd-like layout of scontrol: flat node objects, CPUs split by the parser's rule
        ("scontrol_show_node.json", FIRST, "sinfo_N_cpus.txt"),
        ("sinfo_N_later.json", LATER, "sinfo_N_cpus_later.txt"),
        # batch groups n[1,4] (ALLOCATED, 8/0/0/8) where debug lists n4 alone: n4 is counted once
        ("sinfo_later.json", LATER, "sinfo_N_cpus_later.txt"),
        ("scontrol_show_node_later.json", LATER, "sinfo_N_cpus_later.txt"),
        ("sinfo_N_future_later.json", LATER_FUTURE, "sinfo_N_future_cpus_later.txt"),
    ],
)
def test_nodes_and_cpus_as_sinfo_counts_them(
    release: str, name: str, expected: dict[str, float], text: str
) -> None:
    tally = sp.node_tally(doc(release, name))
    got = values(tally.readings())
    assert {k: got[k] for k in expected} == expected
    assert {k: got[k] for k in sinfo_text_cpus(release, text)} == sinfo_text_cpus(release, text)
    assert tally.partitions == {"batch", "debug"}


def test_future_nodes_are_idle_as_sinfo_counts_them() -> None:
    """25.11's first capture also ran ``sinfo -N --future``: n6 FUTURE 0/4/0/4 adds 4 idle CPUs."""
    expected = FIRST | {"nodes.future": 1, "nodes.total": 6, "cpus.idle": 10, "cpus.total": 24}
    got = values(sp.node_tally(doc("2511", "sinfo_N_future.json")).readings())
    assert {k: got[k] for k in expected} == expected
    assert sinfo_text_cpus("2511", "sinfo_N_future_cpus.txt") == {
        k: got[k] for k in ("cpus.allocated", "cpus.idle", "cpus.other", "cpus.total")
    }


@both
def test_a_group_is_counted_once_whatever_the_order(release: str) -> None:
    """The grouped entry n[1,4] comes first in batch; listed after debug's n4 it still counts n4 once."""
    grouped = doc(release, "sinfo_later.json")
    grouped["sinfo"].reverse()
    got = values(sp.node_tally(grouped).readings())
    assert {k: got[k] for k in LATER} == LATER


@both
def test_a_group_only_partly_counted_is_refused(release: str) -> None:
    """Derived from the real grouped file: debug's n4 entry made to list n4 and n6. Its CPUs cannot be
    split between n4 (counted in batch's n[1,4]) and n6, so the parser says so instead of guessing."""
    grouped = doc(release, "sinfo_later.json")
    debug_n4 = next(
        e for e in grouped["sinfo"] if e["partition"]["name"] == "debug" and e["nodes"]["nodes"] == ["n4"]
    )
    debug_n4["nodes"]["nodes"] = ["n4", "n6"]
    with pytest.raises(PayloadError, match=r"n4 already counted .* \(sinfo -N --json\)"):
        sp.node_tally(grouped)


@both
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            # squeue --json lists pending and running jobs only: 4 COMPLETED, 5 FAILED and 12 CANCELLED,
            # still in slurmctld (squeue_states.txt, squeue -t all), are not in it
            "squeue.json",
            {
                "jobs.running": 3,  # 1 (n1), 2 (n2) in batch; 3 (n3) in debug
                "jobs.pending": 6,  # 6, 7, 9, 10 in batch; 8, 11 in debug
                "jobs.completed": 0,
                "jobs.failed": 0,
                "jobs.cancelled": 0,
                "partition.batch.running": 2,
                "partition.debug.running": 1,
                "partition.batch.pending": 4,
                "partition.debug.pending": 2,
                "account.none.running": 3,  # no accounting: every job's account is ""
                "account.none.pending": 6,
            },
        ),
        (
            # job 6 started on n4 once it was resumed
            "squeue_later.json",
            {
                "jobs.running": 4,  # 1, 2, 6 in batch; 3 in debug
                "jobs.pending": 5,  # 7, 9, 10 in batch; 8, 11 in debug
                "partition.batch.running": 3,
                "partition.debug.running": 1,
                "partition.batch.pending": 3,
                "partition.debug.pending": 2,
            },
        ),
    ],
)
def test_jobs_by_state_and_partition(release: str, name: str, expected: dict[str, float]) -> None:
    got = values(sp.job_readings(doc(release, name), ["batch", "debug"], per_account=True))
    assert {k: got[k] for k in expected} == expected


@both
@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        # 6 (-n 4) Resources; 7 (-n 4 --nice=100) Priority, behind 6; 8 held; 9 --begin=now+2hours;
        # 10 afterok:1; 11 (debug -n 2) Resources, whose state_description says "Nodes required for job
        # are DOWN, DRAINED or reserved for jobs in higher priority partitions"
        ("squeue.json", {"Resources": 2, "Priority": 1, "JobHeldUser": 1, "BeginTime": 1, "Dependency": 1}),
        # 6 runs: 7 is first in line and waits for Resources
        ("squeue_later.json", {"Resources": 2, "JobHeldUser": 1, "BeginTime": 1, "Dependency": 1}),
    ],
)
def test_pending_jobs_by_reason(release: str, name: str, reasons: dict[str, int]) -> None:
    got = values(sp.job_readings(doc(release, name), ["batch", "debug"], per_account=False))
    assert {k: v for k, v in got.items() if k.startswith("pending.")} == {
        f"pending.{r}": n for r, n in reasons.items()
    }


# Counters are the same in every capture: 12 jobs submitted; 1-5 started at once (all by the backfill
# scheduler: bf_backfilled_jobs 5), 4 and 5 ended (a non-zero exit counts as completed, jobs_failed counts
# jobs failed by Slurm itself), 12 cancelled. jobs_pending/jobs_running are slurmctld's count at
# job_states_ts, refreshed every 30 s, not at the request.
SDIAG = {
    "2505": {
        # job_states_ts 1796577258, after 1-3 started (…252) and before 6-12 were submitted (…264)
        "sdiag.json": {
            "sdiag.jobs_submitted": 12,
            "sdiag.jobs_started": 5,
            "sdiag.jobs_completed": 2,
            "sdiag.jobs_canceled": 1,
            "sdiag.jobs_failed": 0,
            "sdiag.bf_backfilled_jobs": 5,
            "sdiag.jobs_pending": 0,
            "sdiag.jobs_running": 3,
            "sdiag.server_thread_count": 1,
            "sdiag.agent_queue_size": 0,
            "sdiag.schedule_cycle_last": 107,
            "sdiag.schedule_cycle_mean": 68,
            "sdiag.schedule_cycle_max": 599,
            "sdiag.schedule_cycle_total": 40,
            "sdiag.schedule_queue_length": 3,
            "sdiag.bf_cycle_last": 131,
            "sdiag.bf_cycle_mean": 683,
            "sdiag.bf_cycle_counter": 14,
            "sdiag.bf_queue_len": 3,
            "sdiag.bf_last_depth": 3,
        },
        # job_states_ts 1796577918, before job 6 started (…934): 6 pending, 3 running
        "sdiag_later.json": {
            "sdiag.jobs_started": 6,
            "sdiag.jobs_pending": 6,
            "sdiag.jobs_running": 3,
            "sdiag.schedule_cycle_last": 576,
            "sdiag.schedule_cycle_total": 372,
            "sdiag.bf_cycle_counter": 625,
            "sdiag.bf_backfilled_jobs": 5,  # job 6 was started by the main scheduler
            "sdiag.bf_queue_len": 2,
        },
    },
    "2511": {
        # both at job_states_ts 1796578051, a second before 6-12 were submitted (…052)
        "sdiag.json": {
            "sdiag.jobs_submitted": 12,
            "sdiag.jobs_started": 5,
            "sdiag.jobs_completed": 2,
            "sdiag.jobs_canceled": 1,
            "sdiag.jobs_failed": 0,
            "sdiag.bf_backfilled_jobs": 5,
            "sdiag.jobs_pending": 0,
            "sdiag.jobs_running": 3,
            "sdiag.server_thread_count": 1,
            "sdiag.schedule_cycle_last": 407,
            "sdiag.schedule_cycle_mean": 244,
            "sdiag.schedule_cycle_max": 1717,
            "sdiag.schedule_cycle_total": 36,
            "sdiag.schedule_queue_length": 3,
            "sdiag.bf_cycle_last": 1615,
            "sdiag.bf_cycle_mean": 1520,
            "sdiag.bf_cycle_counter": 10,
            "sdiag.bf_queue_len": 3,
            "sdiag.bf_last_depth": 3,
        },
        "sdiag_later.json": {
            "sdiag.jobs_started": 6,
            "sdiag.jobs_pending": 0,
            "sdiag.jobs_running": 3,
            "sdiag.agent_count": 1,
            "sdiag.agent_thread_count": 4,
            "sdiag.schedule_cycle_last": 927,
            "sdiag.schedule_cycle_total": 41,
            "sdiag.bf_cycle_counter": 20,
            "sdiag.bf_backfilled_jobs": 6,  # here job 6 was started by the backfill scheduler
            "sdiag.bf_queue_len": 2,
        },
    },
}


@pytest.mark.parametrize(("release", "name"), [(r, n) for r in SDIAG for n in SDIAG[r]])
def test_sdiag_figures(release: str, name: str) -> None:
    got = values(sp.sdiag_readings(doc(release, name)))
    assert {k: got[k] for k in SDIAG[release][name]} == SDIAG[release][name]
    assert len(got) == len(sp.SDIAG_GAUGES) + len(sp.SDIAG_COUNTERS)  # 25.x has every key


# -- through rexmon: cli mode with commands that print the captured files ---------------------------------
@both
def test_cli_mode_archives_the_real_outputs(
    release: str,
    fakes: Fakes,
    write_config: Callable[..., Path],
    rexmon_once: Callable[[Path], tuple[Any, dict[str, float | None]]],
) -> None:
    d = folder(release)
    fakes.command("squeue", d / "squeue.json")
    fakes.command("sinfo", d / "sinfo_N.json")
    fakes.command("sdiag", {"--version": d / "sdiag_version.txt", "--json": d / "sdiag.json"})
    commands = "".join(f'{c} = "{fakes.bin / c}"\n' for c in ("squeue", "sinfo", "sdiag"))
    config = write_config(
        f'[[slurper]]\nid = "hpc"\ntype = "slurm"\ntimeout = 5\nper_account = true\n{commands}'
    )
    run, metrics = rexmon_once(config)
    assert run.exit_code == 0, run.output
    assert fakes.calls("sinfo") == [["-N", "--json"]]
    assert fakes.calls("sdiag") == [["--version"], ["--json"]]
    for key, value in {**FIRST, "jobs.running": 3, "jobs.pending": 6, "pending.Priority": 1}.items():
        assert metrics[f"hpc/{key}"] == value, key
    assert metrics["hpc/partition.debug.pending"] == 2
    assert metrics["hpc/sdiag.jobs_submitted"] == 12
    assert metrics["hpc/sdiag.schedule_queue_length"] == 3

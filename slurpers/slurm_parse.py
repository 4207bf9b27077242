"""Pure parsing of Slurm JSON (``squeue``/``sinfo``/``sdiag --json`` and slurmrestd) into readings.

Handles every release's shape: ``{set, infinite, number}`` envelopes, states as arrays (23.11+) or plain
strings (up to 23.02, lower case with ``state_flags`` on 21.08), ``null`` for absent objects (24.11+),
and both ``sinfo`` layouts (21.08 ``nodes`` vs 23.02+ ``sinfo``).
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slurpers.api import PayloadError, Reading, SlurperError, load_json, metric_name, to_float
from slurpers.payload import first_lines

JOB_STATES = (
    "PENDING",
    "RUNNING",
    "SUSPENDED",
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "OUT_OF_MEMORY",
)
NODE_STATES = ("UNKNOWN", "DOWN", "IDLE", "ALLOCATED", "ERROR", "MIXED", "FUTURE")
NODE_FLAGS = ("DRAIN", "NOT_RESPONDING", "MAINTENANCE", "RESERVED", "POWERED_DOWN", "FAIL", "COMPLETING")
# sinfo (src/sinfo/sinfo.c, _update_sinfo) counts the unallocated CPUs of a node that is DOWN or has the
# DRAIN flag (draining or drained) as "other", and every other node's as idle: FUTURE, UNKNOWN, cloud and
# powered-down nodes included. Allocated CPUs are allocated whatever the state.
_OTHER_STATES = {"DOWN"}
_OTHER_FLAGS = {"DRAIN"}
CPU_KINDS = ("allocated", "idle", "other", "total")

#: sdiag statistics archived as gauges: key -> unit (cycle times are microseconds)
SDIAG_GAUGES = {
    "server_thread_count": "threads",
    "agent_queue_size": "messages",
    "agent_count": "agents",
    "agent_thread_count": "threads",
    "dbd_agent_queue_size": "messages",
    "schedule_cycle_last": "us",
    "schedule_cycle_mean": "us",
    "schedule_cycle_max": "us",
    "schedule_queue_length": "jobs",
    "bf_cycle_last": "us",
    "bf_cycle_mean": "us",
    "bf_queue_len": "jobs",
    "bf_last_depth": "jobs",
    "jobs_pending": "jobs",
    "jobs_running": "jobs",
}
#: sdiag counters since midnight (or ``sdiag --reset``): archived as DERIVE with min 0
SDIAG_COUNTERS = {
    "jobs_submitted": "jobs",
    "jobs_started": "jobs",
    "jobs_completed": "jobs",
    "jobs_canceled": "jobs",
    "jobs_failed": "jobs",
    "schedule_cycle_total": "cycles",
    "bf_cycle_counter": "cycles",
    "bf_backfilled_jobs": "jobs",
}


def load(text: str, what: str) -> dict[str, Any]:
    """Parse a Slurm JSON document; its non-empty ``errors`` list becomes a SlurperError."""
    if not text.strip():
        raise PayloadError(f"{what}: empty output, expected JSON")
    doc = load_json(text, what)
    if not isinstance(doc, dict):
        raise PayloadError(f"{what}: expected a JSON object, got {type(doc).__name__}")
    errors = doc.get("errors") or []
    if not isinstance(errors, list):
        raise PayloadError(f"{what}: 'errors' must be a list, got {type(errors).__name__}")
    if errors:
        raise SlurperError(f"{what}: Slurm reported an error: {error_text(errors)}")
    return doc


def error_text(errors: Sequence[Any]) -> str:
    """What Slurm's ``errors`` entries say: each one's description and error (an error's name, such as
    "Protocol authentication error"), without repeats, at most 300 characters."""
    parts: list[str] = []
    for entry in errors[:5]:
        if not isinstance(entry, Mapping):
            parts.append(str(entry))
            continue
        said = [t for t in (_text(entry, "description"), _text(entry, "error")) if t]
        said = list(dict.fromkeys(said))  # a release that puts the same text in both says it once
        parts.append(" (".join(said) + ")" * (len(said) - 1) if said else json.dumps(entry)[:200])
    return "; ".join(dict.fromkeys(parts))[:300]


def http_error_text(body: str) -> str:
    """The reason in a slurmrestd reply other than 200: its JSON ``errors``, else its first lines."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, Mapping):
        errors = doc.get("errors")
        if isinstance(errors, list) and errors:
            return error_text(errors)
        for key in ("error", "description", "message"):
            if _text(doc, key):
                return _text(doc, key)[:300]
    return first_lines(body)


#: the first release whose sdiag takes --json
SDIAG_JSON_SINCE = (23, 2)
_RELEASE = re.compile(r"^slurm(?:-wlm)?\s+(\d+)\.(\d+)(?:\.(\d+))?", re.IGNORECASE)


def release(version_output: str) -> tuple[int, ...] | None:
    """The release a ``--version`` prints (``slurm 23.02.7``, Debian's ``slurm-wlm 22.05.8``), or None."""
    m = _RELEASE.match(version_output.strip())
    return tuple(int(g) for g in m.groups() if g is not None) if m else None


def release_text(release: Sequence[int]) -> str:
    """``22.05.8`` for (22, 5, 8), as Slurm writes its releases."""
    return ".".join(f"{n:02d}" if i == 1 else str(n) for i, n in enumerate(release))


def token_user(token: str) -> str:
    """The user a Slurm JWT was issued to (its ``sun`` claim), or "" for anything else.

    Only read, never verified: slurmctld verifies the token; this only names whom it is for.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return ""
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return ""
    user = claims.get("sun") if isinstance(claims, dict) else None
    return user if isinstance(user, str) else ""


def number(value: Any, what: str) -> float | None:
    """A plain number or a ``{set, infinite, number}`` envelope; unset, infinite and null give None."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        if "number" not in value or "set" not in value:
            raise PayloadError(f"{what}: expected a number envelope, got {json.dumps(value)[:80]}")
        if not value.get("set") or value.get("infinite"):
            return None
        value = value["number"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadError(f"{what}: expected a number, got {value!r:.60}")
    return to_float(value, what)


def split_state(value: Any, known: Sequence[str], what: str) -> tuple[str, frozenset[str]]:
    """Normalize a state (array, ``"RUNNING"``, ``"mixed"``, ``"IDLE+DRAIN"``) to (BASE, {FLAGS})."""
    if isinstance(value, str):
        parts = value.split("+")
    elif isinstance(value, list) and all(isinstance(p, str) for p in value):
        parts = list(value)
    else:
        raise PayloadError(f"{what}: state {value!r:.60} is neither a string nor a list of strings")
    words = [p.strip().upper() for p in parts if p.strip()]  # 21.08 wrote flags with a trailing space
    if not words:
        raise PayloadError(f"{what}: empty state")
    base = next((w for w in words if w in known), words[0])
    return base, frozenset(w for w in words if w != base)


def _text(obj: Mapping[str, Any], key: str, default: str = "") -> str:
    value = obj.get(key)
    return value if isinstance(value, str) and value else default


def _object(obj: Mapping[str, Any], key: str, what: str) -> Mapping[str, Any]:
    """An optional nested object: absent or null is empty, any other type is a PayloadError."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PayloadError(f"{what}: {key!r} must be an object, got {type(value).__name__}")
    return value


def _list(obj: Mapping[str, Any], key: str, what: str) -> list[Any]:
    """An optional list: absent or null is empty, any other type is a PayloadError."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{what}: {key!r} must be a list, got {type(value).__name__}")
    return value


def _items(doc: Mapping[str, Any], key: str, what: str) -> list[Mapping[str, Any]]:
    items = doc.get(key)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise PayloadError(f"{what}: expected a list of objects under {key!r}")
    return items


def job_readings(doc: Mapping[str, Any], partitions: Iterable[str], per_account: bool) -> list[Reading]:
    """Jobs by base state in total, per partition (every known one) and per account; pending by reason."""
    totals: Counter[str] = Counter()
    by_part: dict[str, Counter[str]] = {p: Counter() for p in partitions}
    by_account: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    for job in _items(doc, "jobs", "squeue"):
        what = f"job {job.get('job_id')}"
        state, _flags = split_state(job.get("job_state"), JOB_STATES, what)
        totals[state] += 1
        # a pending job submitted to several partitions ("cs,debug") is pending in each of them
        for part in _text(job, "partition", "unknown").split(","):
            by_part.setdefault(part.strip(), Counter())[state] += 1
        if per_account:
            by_account.setdefault(_text(job, "account", "none"), Counter())[state] += 1
        if state == "PENDING":
            reasons[_text(job, "state_reason", "None")] += 1
    out = [Reading(metric_name("jobs", s.lower()), totals[s]) for s in JOB_STATES]
    for prefix, table in (("partition", by_part), ("account", by_account)):
        for name in sorted(table):
            out += [Reading(metric_name(prefix, name, s.lower()), table[name][s]) for s in JOB_STATES]
    out += [Reading(metric_name("pending", r), n) for r, n in sorted(reasons.items())]
    return out


@dataclass
class NodeTally:
    """Nodes and CPUs counted once each, plus the partitions seen."""

    states: Counter[str] = field(default_factory=Counter)
    flags: Counter[str] = field(default_factory=Counter)
    drained: int = 0
    draining: int = 0
    cpus: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CPU_KINDS, 0.0))
    partitions: set[str] = field(default_factory=set)

    def add(self, base: str, flags: frozenset[str], count: int) -> None:
        self.states[base] += count
        for flag in flags:
            self.flags[flag] += count
        if "DRAIN" in flags:
            busy = base in ("ALLOCATED", "MIXED") or "COMPLETING" in flags
            if busy:
                self.draining += count
            else:
                self.drained += count

    def readings(self) -> list[Reading]:
        out = [Reading(metric_name("nodes", s.lower()), self.states[s]) for s in NODE_STATES]
        out += [
            Reading(metric_name("nodes", s.lower()), n)
            for s, n in self.states.items()
            if s not in NODE_STATES
        ]
        out.append(Reading("nodes.total", sum(self.states.values())))
        out += [Reading(metric_name("nodes.flag", f.lower()), self.flags[f]) for f in NODE_FLAGS]
        out += [Reading("nodes.drained", self.drained), Reading("nodes.draining", self.draining)]
        out += [Reading(f"cpus.{k}", self.cpus[k]) for k in CPU_KINDS]
        return out


def node_tally(doc: Mapping[str, Any]) -> NodeTally:
    """Count nodes and CPUs from ``sinfo --json`` (either layout) or slurmrestd ``/nodes``."""
    if "sinfo" in doc:
        return _tally_sinfo(_items(doc, "sinfo", "sinfo"))
    if "nodes" in doc:
        return _tally_nodes(_items(doc, "nodes", "sinfo"))
    raise PayloadError("sinfo: neither 'sinfo' (23.02+) nor 'nodes' (21.08, slurmrestd) in the document")


def _tally_nodes(nodes: Iterable[Mapping[str, Any]]) -> NodeTally:
    tally = NodeTally()
    for node in nodes:
        what = f"node {node.get('name')}"
        base, flags = split_state(node.get("state"), NODE_STATES, what)
        extra = _list(node, "state_flags", what)  # 21.08: flags apart from the lower-case state
        flags |= {str(f).strip().upper() for f in extra if str(f).strip()}
        tally.add(base, flags, 1)
        total = number(node.get("cpus"), f"{what}: cpus") or 0.0
        alloc = number(node.get("alloc_cpus"), f"{what}: alloc_cpus") or 0.0
        spare = "other" if base in _OTHER_STATES or flags & _OTHER_FLAGS else "idle"
        tally.cpus["allocated"] += alloc
        tally.cpus[spare] += max(0.0, total - alloc)
        tally.cpus["total"] += total
        tally.partitions.update(p for p in _list(node, "partitions", what) if isinstance(p, str))
    return tally


def _listed_nodes(entry: Mapping[str, Any], i: int) -> tuple[str, ...]:
    nodes = _object(entry, "nodes", f"sinfo entry {i}")
    return tuple(sorted(str(n) for n in _list(nodes, "nodes", f"sinfo entry {i}: nodes")))


def _tally_sinfo(entries: Sequence[Mapping[str, Any]]) -> NodeTally:
    tally = NodeTally()
    # A node in two partitions is listed once per partition: count it once. ``sinfo -N`` (what the
    # slurper runs) lists one node per entry; plain ``sinfo`` groups each partition's nodes by state,
    # so batch may say n[1,4] where debug says n4. Larger groups go first and an entry whose nodes are
    # all counted is skipped; a group only partly counted cannot be split into its nodes' CPUs.
    listed = sorted(((i, e, _listed_nodes(e, i)) for i, e in enumerate(entries)), key=lambda x: -len(x[2]))
    seen: set[str] = set()
    for i, entry, names in listed:
        part = entry.get("partition") or {}
        if isinstance(part, Mapping) and _text(part, "name"):
            tally.partitions.add(_text(part, "name"))
        what = f"sinfo entry {i} ({','.join(names)[:60]})"
        counted = seen.intersection(names)
        if names and len(counted) == len(names):
            continue
        if counted:
            raise PayloadError(
                f"{what}: {','.join(sorted(counted))[:60]} already counted in another partition's group, "
                "whose CPUs cannot be split per node; give the nodes one entry each (sinfo -N --json)"
            )
        seen.update(names)
        base, flags = split_state(_object(entry, "node", what).get("state"), NODE_STATES, what)
        # an entry without nodes.total (reported of 25.05, though 25.05.8 and 25.11.7 write it in every
        # entry: tests/data/slurm/2505/loopback/) counts the nodes it lists
        total = number(_object(entry, "nodes", what).get("total"), f"{what}: nodes.total")
        tally.add(base, flags, len(names) if total is None else int(total))
        cpus = _object(entry, "cpus", what)
        for key in CPU_KINDS:
            tally.cpus[key] += number(cpus.get(key), f"{what}: cpus.{key}") or 0.0
    return tally


def partition_names(doc: Mapping[str, Any]) -> list[str]:
    """Names from slurmrestd ``/partitions``."""
    return sorted(_text(p, "name") for p in _items(doc, "partitions", "partitions") if _text(p, "name"))


def sdiag_readings(doc: Mapping[str, Any]) -> list[Reading]:
    """Scheduler figures from ``sdiag --json`` or ``/diag``; keys a release lacks are skipped."""
    stats = doc.get("statistics")
    if not isinstance(stats, Mapping):
        raise PayloadError("sdiag: no 'statistics' object in the document")
    out = []
    for key in (*SDIAG_GAUGES, *SDIAG_COUNTERS):
        if key in stats:
            out.append(Reading(f"sdiag.{key}", number(stats[key], f"sdiag: {key}")))
    return out


_VERSION = re.compile(r"^/slurm/v(\d+)\.(\d+)\.(\d+)/")


def newest_api(openapi: Mapping[str, Any]) -> str:
    """The newest ``v0.0.x`` that serves ``/slurm/v0.0.x/jobs`` in an ``/openapi/v3`` document."""
    paths = openapi.get("paths")
    if not isinstance(paths, Mapping):
        raise PayloadError("openapi: no 'paths' object")
    found = set()
    for path in paths:
        m = _VERSION.match(path)
        if m and path[m.end() :].rstrip("/") == "jobs":
            found.add(tuple(int(g) for g in m.groups()))
    if not found:
        raise PayloadError("openapi: no /slurm/v0.0.x/jobs path; is this slurmrestd with openapi/slurmctld?")
    major, minor, micro = max(found)
    return f"v{major}.{minor}.{micro}"

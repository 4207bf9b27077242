"""HTCondor pool, schedds and jobs, from ``condor_status``/``condor_q -json`` or the ``htcondor2`` bindings.

Both modes turn ads into the same plain dicts (the bindings through ``ClassAd.printJson()``, exactly
what the tools print), so one set of pure functions aggregates them and the modes agree value for value.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field
from typing import Any, Literal

from slurpers.api import (
    CollectContext,
    MetricSpec,
    PayloadError,
    Reading,
    Slurper,
    SlurperError,
    json_decoder,
    json_error,
    load_json,
    metric_name,
    run_command,
    settings,
)

log = logging.getLogger(__name__)

Ad = Mapping[str, Any]

SCHEDD_ATTRS = (
    "Name",
    "TotalRunningJobs",
    "TotalIdleJobs",
    "TotalHeldJobs",
    "RecentJobsStarted",
    "RecentJobsCompleted",
    "RecentDaemonCoreDutyCycle",
)
SLOT_ATTRS = ("Name", "Machine", "SlotType", "State", "Activity", "Cpus", "Memory")
JOB_ATTRS = ("ClusterId", "ProcId", "JobStatus")
#: schedd ad attribute -> metric suffix
SCHEDD_FIELDS = {
    "TotalRunningJobs": "running",
    "TotalIdleJobs": "idle",
    "TotalHeldJobs": "held",
    "RecentJobsStarted": "recent_started",
    "RecentJobsCompleted": "recent_completed",
    "RecentDaemonCoreDutyCycle": "duty_cycle",
}
JOB_STATUS = {
    1: "idle",
    2: "running",
    3: "removed",
    4: "completed",
    5: "held",
    6: "transferring_output",
    7: "suspended",
}
SLOT_STATES = ("owner", "unclaimed", "matched", "claimed", "preempting", "drained", "backfill")


@settings
class HTCondorSettings:
    #: collector host[:port]; "" = the local configuration's COLLECTOR_HOST
    pool: str = ""
    #: "cli" runs condor_status/condor_q; "bindings" uses the htcondor2 Python module
    mode: Literal["cli", "bindings"] = "cli"
    condor_status: str = "condor_status"
    condor_q: str = "condor_q"
    #: ClassAd expression restricting the jobs counted per group (e.g. 'JobUniverse == 5')
    constraint: str = ""
    #: job attributes whose values name a group, e.g. ["AcctGroup"] or ["AcctGroup", "Owner"]
    group_by: list[str] = field(default_factory=lambda: ["Owner"])

    def __post_init__(self) -> None:
        if not self.group_by or any(not a.strip() or not a.replace("_", "").isalnum() for a in self.group_by):
            raise ValueError('group_by must list job attribute names, e.g. ["AcctGroup"]')


# -- parsing (pure) --------------------------------------------------------------------------------


def parse_ads(text: str, what: str) -> list[dict[str, Any]]:
    """Parse ``-json`` output: empty output is no ads; one or more concatenated arrays of objects."""
    decoder = json_decoder()  # refuses NaN, Infinity and 1e999: HTCondor writes real("NaN") as /Expr/
    ads: list[dict[str, Any]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            return ads
        try:
            chunk, pos = decoder.raw_decode(text, pos)
        except ValueError as exc:
            raise json_error(exc, text, what) from None
        if not isinstance(chunk, list) or not all(isinstance(ad, dict) for ad in chunk):
            raise PayloadError(f"{what}: expected a JSON array of ads, got {type(chunk).__name__}")
        ads.extend(chunk)


def is_expr(value: object) -> bool:
    """True for an unevaluated ClassAd expression as the JSON printer writes it: ``/Expr(...)/``."""
    return isinstance(value, str) and value.startswith("/Expr(") and value.endswith(")/")


def ad_number(ad: Ad, attr: str, what: str) -> float | None:
    """A numeric attribute; None when undefined (null/absent) or an expression (incl. NaN, error)."""
    value = ad.get(attr)
    if value is None or is_expr(value):
        return None
    number: float | None = None
    if isinstance(value, (bool, int, float, str)):
        try:
            number = float(value)
        except ValueError:
            pass
        except OverflowError:  # an integer beyond a float's range
            number = math.inf
    if number is None:
        raise PayloadError(f"{what}: attribute {attr} = {value!r:.60} is not a number")
    if not math.isfinite(number):
        raise PayloadError(f"{what}: attribute {attr} = {value!r:.60} is not a finite number")
    return number


def ad_name(ad: Ad, what: str) -> str:
    name = ad.get("Name")
    if not isinstance(name, str) or not name or is_expr(name):
        raise PayloadError(f"{what}: ad without a Name: {json.dumps(ad)[:120]}")
    return name


def schedd_readings(ads: Iterable[Ad]) -> list[Reading]:
    """Per schedd: running, idle, held (and Recent*, duty cycle) from schedd ads."""
    out = []
    for ad in ads:
        name = ad_name(ad, "schedd ad")
        for attr, suffix in SCHEDD_FIELDS.items():
            value = ad_number(ad, attr, f"schedd {name}")
            if value is None and attr not in ad:
                continue  # older schedds lack some Recent* attributes: no series rather than U
            out.append(Reading(metric_name("schedd", name, suffix), value))
    return out


def _word(value: object, default: str) -> str:
    if value is None or is_expr(value) or not isinstance(value, str) or not value.strip():
        return default
    return value.strip().lower()


def slot_readings(ads: Iterable[Ad]) -> list[Reading]:
    """Pool slots and CPUs by State/Activity, total CPUs and memory (MiB).

    A partitionable slot's Cpus/Memory are what is left unclaimed, its dynamic children carry the
    rest, so summing Cpus over all slot ads counts every core once. Partitionable slots are counted
    apart (``slots.partitionable``) since they are containers, not job slots.
    """
    slots: Counter[tuple[str, str]] = Counter()
    cpus: defaultdict[tuple[str, str], float] = defaultdict(float)
    totals = {"cpus": 0.0, "memory": 0.0}
    unknown: set[str] = set()
    partitionable = 0
    for ad in ads:
        name = ad_name(ad, "slot ad")
        key = (_word(ad.get("State"), "unknown"), _word(ad.get("Activity"), "unknown"))
        ncpu = ad_number(ad, "Cpus", f"slot {name}")
        mem = ad_number(ad, "Memory", f"slot {name}")
        if _word(ad.get("SlotType"), "static") == "partitionable":
            partitionable += 1
        else:
            slots[key] += 1
        if ncpu is None:
            unknown.add("cpus")
        else:
            cpus[key] += ncpu
            totals["cpus"] += ncpu
        if mem is None:
            unknown.add("memory")
        else:
            totals["memory"] += mem
    out = [Reading(metric_name("slots", s, a), n) for (s, a), n in sorted(slots.items())]
    out += [Reading(metric_name("cpus", s, a), n) for (s, a), n in sorted(cpus.items())]
    for state in SLOT_STATES:
        out.append(Reading(metric_name("slots", state), sum(n for (s, _), n in slots.items() if s == state)))
        out.append(Reading(metric_name("cpus", state), sum(n for (s, _), n in cpus.items() if s == state)))
    out.append(Reading("slots.partitionable", partitionable))
    out.append(Reading("slots.total", sum(slots.values())))
    # an expression in Cpus/Memory makes the total unknown rather than silently short
    out.append(Reading("cpus.total", None if "cpus" in unknown else totals["cpus"]))
    out.append(Reading("memory.total", None if "memory" in unknown else totals["memory"]))
    return out


def group_key(ad: Ad, group_by: Sequence[str]) -> str:
    """The group a job belongs to: its group_by values joined by '.', 'undefined' where absent."""
    parts = []
    for attr in group_by:
        value = ad.get(attr)
        if value is None or is_expr(value):
            parts.append("undefined")
        else:
            parts.append(str(value))
    return metric_name(*parts)


def job_readings(ads: Iterable[Ad], group_by: Sequence[str]) -> list[Reading]:
    """Jobs by status per group (every status is written for every group seen, so zeros are real)."""
    counts: dict[str, Counter[str]] = {}
    for ad in ads:
        status = ad.get("JobStatus")
        if isinstance(status, bool) or not isinstance(status, (int, float)) or status not in JOB_STATUS:
            job = f"{ad.get('ClusterId')}.{ad.get('ProcId')}"
            raise PayloadError(f"job {job}: JobStatus {status!r:.40} is not one of 1..7")
        counts.setdefault(group_key(ad, group_by), Counter())[JOB_STATUS[int(status)]] += 1
    out = []
    for group in sorted(counts):
        for status in JOB_STATUS.values():
            out.append(Reading(f"jobs.{group}.{status}", counts[group][status]))
    return out


def classads_to_dicts(ads: Iterable[Any]) -> list[dict[str, Any]]:
    """classad2.ClassAd objects -> the dicts condor_* -json would print for them."""
    return [load_json(ad.printJson(), "htcondor2 ad") for ad in ads]


def specs() -> list[MetricSpec]:
    """The metric families this slurper writes."""
    out = [
        MetricSpec("schedd.*.running", unit="jobs", min=0, graph="schedd.<name>", label="running"),
        MetricSpec("schedd.*.idle", unit="jobs", min=0, graph="schedd.<name>", label="idle"),
        # default tolerances (docs/slurpers/htcondor.md): held jobs wait for a person; a schedd whose
        # RecentDaemonCoreDutyCycle stays above 0.95 is overloaded (HTCondor manual)
        MetricSpec(
            "schedd.*.held",
            unit="jobs",
            min=0,
            graph="schedd.<name>",
            label="held",
            warning="100",
            critical="1000",
        ),
        MetricSpec("schedd.*.recent_started", unit="jobs", min=0, graph="schedd.<name>.recent"),
        MetricSpec("schedd.*.recent_completed", unit="jobs", min=0, graph="schedd.<name>.recent"),
        MetricSpec(
            "schedd.*.duty_cycle",
            unit="ratio",
            min=0,
            max=1,
            graph="schedd.<name>.duty_cycle",
            warning="~:0.95",
            critical="~:0.98",
        ),
        MetricSpec("slots.partitionable", unit="slots", min=0, graph="slots"),
        MetricSpec("slots.total", unit="slots", min=0, graph="slots"),
        MetricSpec("slots.*", unit="slots", min=0, graph="slots"),
        MetricSpec("cpus.total", unit="cores", min=0, graph="cpus"),
        MetricSpec("cpus.*", unit="cores", min=0, graph="cpus"),
        MetricSpec("memory.total", unit="MiB", min=0, graph="memory"),
    ]
    for status in JOB_STATUS.values():
        out.append(
            MetricSpec(
                f"jobs.*.{status}", unit="jobs", min=0, graph="jobs.<group>", label=status, when_absent=0
            )
        )
    return out


# -- the slurper -----------------------------------------------------------------------------------


class HTCondorSlurper(Slurper[HTCondorSettings]):
    def metrics(self) -> Sequence[MetricSpec]:
        return specs()

    def collect(self, ctx: CollectContext) -> Sequence[Reading]:
        if self.settings.mode == "bindings":
            schedds, slots, jobs = self._fetch_bindings()
        else:
            schedds, slots, jobs = self._fetch_cli(ctx)
        return [
            *schedd_readings(schedds),
            *slot_readings(slots),
            *job_readings(jobs, self.settings.group_by),
        ]

    def _job_attrs(self) -> list[str]:
        return [*JOB_ATTRS, *(a for a in self.settings.group_by if a not in JOB_ATTRS)]

    def _fetch_cli(self, ctx: CollectContext) -> tuple[list[dict[str, Any]], ...]:
        s = self.settings
        pool = ["-pool", s.pool] if s.pool else []
        schedd_argv = [s.condor_status, *pool, "-schedd", "-json", "-attributes", ",".join(SCHEDD_ATTRS)]
        schedds = parse_ads(run_command(schedd_argv, timeout=ctx.timeout).stdout, "condor_status -schedd")
        slot_argv = [s.condor_status, *pool, "-json", "-attributes", ",".join(SLOT_ATTRS)]
        slots = parse_ads(run_command(slot_argv, timeout=ctx.timeout).stdout, "condor_status")
        if not schedds:
            return schedds, slots, []
        q_argv = [s.condor_q, *pool, "-allusers", "-json", "-attributes", ",".join(self._job_attrs())]
        if len(schedds) > 1:
            q_argv.append("-global")
        else:
            q_argv += ["-name", ad_name(schedds[0], "schedd ad")]
        if s.constraint:
            q_argv += ["-constraint", s.constraint]
        jobs = parse_ads(run_command(q_argv, timeout=ctx.timeout).stdout, "condor_q")
        return schedds, slots, jobs

    def _fetch_bindings(self) -> tuple[list[dict[str, Any]], ...]:
        try:
            import htcondor2
        except ImportError as exc:
            raise SlurperError(
                f'mode = "bindings" needs the htcondor2 module (pip install htcondor): {exc}'
            ) from None
        try:
            coll = htcondor2.Collector(self.settings.pool or None)
            schedd_ads = coll.query(htcondor2.AdType.Schedd, projection=list(SCHEDD_ATTRS))
            slot_ads = coll.query(htcondor2.AdType.Startd, projection=list(SLOT_ATTRS))
            job_ads: list[Any] = []
            for ad in schedd_ads:
                schedd = htcondor2.Schedd(ad)
                job_ads += schedd.query(self.settings.constraint or "true", projection=self._job_attrs())
        except htcondor2.HTCondorException as exc:
            where = self.settings.pool or "the local collector"
            raise SlurperError(f"htcondor2 query of {where} failed: {exc}") from exc
        return classads_to_dicts(schedd_ads), classads_to_dicts(slot_ads), classads_to_dicts(job_ads)

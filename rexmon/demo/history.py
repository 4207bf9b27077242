"""A week of history for the demo: simulator payloads at past times, through the slurpers' own parsers.

For every past time ``t`` (every :data:`STEP` seconds) a source produces what the real command or
service would have printed at ``t`` (the simulators are functions of time), the slurper's pure parse
functions turn it into readings, and the readings reach the archive in a handful of large batches.
Generating payloads is the slow part, so the times are spread over a pool of worker processes.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import random
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rexmon.absent import AbsentFill
from rrd.archive import Archive, SeriesSpec, Update
from rrd.names import make_id
from slurpers.api import Reading, Slurper

log = logging.getLogger(__name__)
STEP = 300
WEEK = 7 * 86400
HEALTH = "rexmon"
#: (slurper id, time, metric name, value)
Row = tuple[str, int, str, float | None]
#: readings of one slurper type at time t: (options, t, seed) -> readings
SourceFn = Callable[[dict[str, Any], float, int], list[Reading]]


@dataclass(frozen=True)
class Source:
    """One slurper's history: its id, the kind of payload and the options the slurper was given."""

    slurper_id: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PrefillStats:
    """What a pre-fill wrote, and how long it took."""

    points: int = 0
    written: int = 0
    skipped_old: int = 0
    errors: int = 0
    metrics: int = 0
    batches: int = 0
    seconds: float = 0.0


def htcondor_at(options: dict[str, Any], t: float, seed: int) -> list[Reading]:
    """``condor_status -schedd``, ``condor_status``, ``condor_q`` at ``t`` through the htcondor parsers."""
    from rexmon.demo import batch_sim as sim
    from slurpers import htcondor as hc

    return [
        *hc.schedd_readings(hc.parse_ads(sim.condor_schedds(t, seed), "condor_status -schedd")),
        *hc.slot_readings(hc.parse_ads(sim.condor_slots(t, seed), "condor_status")),
        *hc.job_readings(
            hc.parse_ads(sim.condor_jobs(t, seed), "condor_q"), options.get("group_by", ["Owner"])
        ),
    ]


def slurm_at(options: dict[str, Any], t: float, seed: int) -> list[Reading]:
    """``squeue``, ``sinfo -N``, ``sdiag`` (all ``--json``) at ``t`` through the slurm parsers."""
    from rexmon.demo import batch_sim as sim
    from slurpers import slurm_parse as sp

    jobs = sp.load(sim.squeue(t, seed), "squeue --json")
    tally = sp.node_tally(sp.load(sim.sinfo(t, seed), "sinfo -N --json"))
    diag = sp.load(sim.sdiag(t, seed), "sdiag --json")
    return [
        *sp.job_readings(jobs, sorted(tally.partitions), bool(options.get("per_account", False))),
        *tally.readings(),
        *sp.sdiag_readings(diag),
    ]


def enstore_at(options: dict[str, Any], t: float, seed: int) -> list[Reading]:
    """Library manager queues, every mover's status and the SAAG status at ``t`` (enstore parsers)."""
    from collections import Counter

    from rexmon.demo import batch_sim as sim
    from slurpers import enstore as en
    from slurpers.api import metric_name

    out: list[Reading] = []
    for lm in options.get("library_managers", []):
        full = en.full(lm, ".library_manager")
        name = en.short(full, ".library_manager")
        queue = en.parse_get_queue(sim.enstore_get_queue(t, seed, full), full)
        out += [Reading(metric_name("lm", name, c), queue[c]) for c in en.QUEUE_COUNTERS]
        length = en.parse_queue_length(sim.enstore_queue_length(t, seed, full), full)
        out.append(Reading(metric_name("lm", name, "queue_length"), length))
    movers = en.movers_from_config(sim.enstore_config(t, seed))
    states: Counter[str] = Counter()
    for mover in movers:
        status = en.parse_mover_status(sim.enstore_mover_status(t, seed, mover), mover)
        states[status["state"]] += 1
        short = en.short(mover, ".mover")
        out += [Reading(metric_name("mover", short, k), status[k]) for k in en.MOVER_COUNTERS]
    out += [Reading(metric_name("movers", s.lower()), states[s]) for s in en.MOVER_STATES]
    out += [
        Reading(metric_name("movers", s.lower()), n) for s, n in states.items() if s not in en.MOVER_STATES
    ]
    out += [Reading("movers.unreachable", 0), Reading("movers.total", len(movers))]
    if options.get("status_url"):
        out.append(Reading("saag.status", en.parse_status_only(sim.enstore_status_only(t, seed))))
    return out


_LIVE: dict[str, Any] = {}


def _slurper(kind: str, options: dict[str, Any], url: str) -> Any:
    """This worker's instance of the real slurper of ``kind``, with its URL pointed at ``url``."""
    hit = _LIVE.get(kind)
    if hit is None:
        from pydantic import TypeAdapter

        from slurpers.registry import SlurperRegistry

        table = {k: v for k, v in options.items() if k != "stomp"}
        table["ftsmon_url" if kind == "fts" else "base_url"] = url
        cls = SlurperRegistry.from_entry_points().get(kind)
        hit = cls("history", TypeAdapter(cls.Settings).validate_python(table), interval=STEP, timeout=30)
        _LIVE[kind] = hit
    return hit


def fts_at(options: dict[str, Any], t: float, seed: int) -> list[Reading]:
    """ftsmon's overview and stats pages at ``t`` through the real FTS slurper's reading of them.

    The pages come straight from the simulator (no HTTP round trip per past time: that doubled the
    pre-fill); everything after the page text is the slurper's own code.
    """
    from rexmon.demo import transfer_sim as ts
    from slurpers.api import CollectContext

    slurper = _slurper("fts", options, "http://127.0.0.1/fts3/ftsmon")
    pages = {"overview": ts.ftsmon_overview, "stats": ts.ftsmon_stats}
    slurper._get = lambda page, params, ctx: pages[page](t, seed, params.get("vo", ""))
    return list(slurper.collect(CollectContext(now=t, timeout=30)))


def netbeam_range(options: dict[str, Any], first: float, last: float, seed: int) -> list[Reading]:
    """Every Netbeam point in [first - STEP, last), read by the real slurper from the loopback simulator
    in the slurper's own windows (a few requests per chunk of the week, not one per point)."""
    from rexmon.demo.transfer_sim import TransferSim
    from slurpers.api import CollectContext

    sim = _LIVE.get("netbeam-sim")
    if sim is None:
        sim = _LIVE["netbeam-sim"] = TransferSim(
            seed=seed, clock=lambda: _CLOCK[0], netbeam_step=STEP
        ).start()
    slurper = _slurper("netbeam", options, sim.netbeam_url)
    s = slurper.settings
    now = last + s.lag
    _CLOCK[0] = now
    until = {f"{r}|{series}": first - STEP for r in s.interfaces for series in s.series}
    got: list[Reading] = []
    ctx = CollectContext(now=now, timeout=600, state={"until": until})
    while True:
        got += slurper.collect(ctx)
        if not ctx.new_state or all(v >= last for v in ctx.new_state["until"].values()):
            return got
        ctx = CollectContext(now=now, timeout=600, state=ctx.new_state)


_CLOCK = [0.0]
#: slurper types whose history is read a chunk of time at once: (options, first, last, seed)
RANGE_SOURCES: dict[str, Callable[[dict[str, Any], float, float, int], list[Reading]]] = {
    "netbeam": netbeam_range
}


#: slurper type -> history source
SOURCES: dict[str, SourceFn] = {
    "htcondor": htcondor_at,
    "slurm": slurm_at,
    "enstore": enstore_at,
    "fts": fts_at,
}


def rows_for(sources: Sequence[Source], times: Sequence[int], seed: int) -> list[Row]:
    """Every reading of every source at every time (runs in a worker process).

    A source that fails is logged and left out: the demo goes on without its history.
    """
    rows: list[Row] = []
    for src in sources:
        try:
            rows += _source_rows(src, times, seed)
        except Exception as exc:
            log.warning("no history for %s: %s: %s", src.slurper_id, type(exc).__name__, exc)
    rows.sort(key=lambda r: r[1])  # oldest first within the chunk, for every metric
    return rows


def _source_rows(src: Source, times: Sequence[int], seed: int) -> list[Row]:
    if not times:
        return []
    sid = src.slurper_id
    if src.kind in RANGE_SOURCES:
        got = RANGE_SOURCES[src.kind](src.options, float(times[0]), float(times[-1]), seed)
        return [(sid, int(r.time if r.time is not None else times[-1]), r.metric, r.value) for r in got]
    rows: list[Row] = []
    fn = SOURCES[src.kind]
    for t in times:
        rows += [
            (sid, int(r.time) if r.time is not None else t, r.metric, r.value)
            for r in fn(src.options, t, seed)
        ]
    return rows


def munin_rows(
    slurper_id: str, current: Sequence[Reading], specs: Callable[[str], Any], times: Sequence[int], seed: int
) -> list[Row]:
    """Plausible past values of a real Munin plugin, ending at what it reads now.

    A plugin reads the machine as it is, so its past is made up: gauges follow a daily cycle around
    today's value, counters (DERIVE/COUNTER) climb at a cycling rate so that they end at today's count.
    """
    rng = random.Random(f"{seed}:{slurper_id}")
    rows: list[Row] = []
    if not times:
        return rows
    end = times[-1]
    for r in current:
        if r.value is None:
            continue
        spec = specs(r.metric)
        shift = rng.uniform(0, 24)
        if spec.ds_type == "GAUGE":
            for t in times:
                cycle = 0.5 + 0.5 * math.cos(2 * math.pi * (((t % 86400) / 3600.0) - shift) / 24.0)
                v = r.value * (0.75 + 0.35 * cycle + rng.uniform(-0.05, 0.05))
                v = min(v, spec.max) if spec.max is not None else v
                rows.append((slurper_id, t, r.metric, max(v, spec.min) if spec.min is not None else v))
        else:
            rate = max(r.value, 0.0) / (4.0 * WEEK)  # stays positive over the week
            count = float(r.value)
            back: list[Row] = []
            for t in reversed(times):
                back.append((slurper_id, t, r.metric, float(int(count))))
                cycle = 0.5 + 0.5 * math.cos(2 * math.pi * (((t % 86400) / 3600.0) - shift) / 24.0)
                count = max(0.0, count - rate * (0.4 + 1.2 * cycle) * STEP)
            rows += reversed(back)
    return [row for row in rows if row[1] <= end]


def health_rows(slurper_ids: Iterable[str], times: Sequence[int], seed: int) -> list[Row]:
    """rexmon's own health metrics (run duration, errors) for the pre-filled week."""
    rng = random.Random(f"{seed}:health")
    rows: list[Row] = []
    for sid in slurper_ids:
        base = rng.uniform(0.05, 0.6)
        for t in times:
            rows.append((HEALTH, t, f"{sid}.duration", round(base * rng.uniform(0.8, 1.4), 4)))
            rows.append((HEALTH, t, f"{sid}.errors", 0.0))
    return rows


class Prefill:
    """Writes generated rows to the archive, with each slurper's own metric specs."""

    def __init__(self, archive: Archive, slurpers: Sequence[Slurper[Any]], heartbeat: int) -> None:
        self.archive = archive
        self.slurpers = {s.id: s for s in slurpers}
        self.heartbeat = heartbeat
        self._series: dict[tuple[str, str], tuple[str, SeriesSpec]] = {}
        #: per slurper, the names of ``when_absent`` families written (rexmon/absent.py)
        self.counted: dict[str, set[str]] = {}
        self.stats = PrefillStats()

    def series(self, slurper_id: str, name: str) -> tuple[str, SeriesSpec]:
        """Metric id and file spec, as the service would create them (with a heartbeat fit for STEP)."""
        key = (slurper_id, name)
        hit = self._series.get(key)
        if hit is None:
            s = self.slurpers.get(slurper_id)
            if s is None:
                spec = SeriesSpec("GAUGE", self.heartbeat, 0, None)
            else:
                ms = s.spec_for(name)
                spec = SeriesSpec(ms.ds_type, max(self.heartbeat, int(2 * s.interval)), ms.min, ms.max)
                if ms.when_absent is not None:
                    self.counted.setdefault(slurper_id, set()).add(name)
            hit = (make_id(slurper_id, name), spec)
            self._series[key] = hit
        return hit

    def write(self, rows: Iterable[Row]) -> None:
        """One batch; rows of one metric must come oldest first."""
        series = self.series
        updates = []
        for sid, t, name, value in rows:
            mid, spec = series(sid, name)
            updates.append(Update(mid, t, value, spec))
        res = self.archive.write(updates)
        self.stats.points += len(updates)
        self.stats.written += res.written
        self.stats.skipped_old += res.skipped_old
        self.stats.errors += len(res.errors)
        self.stats.batches += 1
        for mid, msg in res.errors[:5]:
            log.warning("pre-fill: %s: %s", mid, msg)
        self.stats.metrics = len(self._series)


def history_times(now: float, start: float | None = None) -> list[int]:
    """STEP-aligned times from a week ago (or after ``start``), then ``now`` itself (nothing stale)."""
    first = int(max(now - WEEK, start or 0.0))
    first = first - first % STEP + STEP
    times = list(range(first, int(now), STEP))
    return [*times, int(now)] if times or first <= now else times


def generate(
    sources: Sequence[Source], times: Sequence[int], seed: int, workers: int, batches: int = 8
) -> Iterable[list[Row]]:
    """Rows in time order, ``batches`` chunks, generated by ``workers`` processes."""
    if not sources or not times:
        return
    size = max(1, math.ceil(len(times) / batches))
    chunks = [list(times[i : i + size]) for i in range(0, len(times), size)]
    if workers <= 1:
        for chunk in chunks:
            yield rows_for(sources, chunk, seed)
        return
    # spawn, not fork: the demo already runs threads (simulator servers) when it pre-fills
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(rows_for, list(sources), chunk, seed) for chunk in chunks]
        for fut in futures:
            yield fut.result()


def prefill(
    archive: Archive,
    slurpers: Sequence[Slurper[Any]],
    sources: Sequence[Source],
    extra_rows: Sequence[Row],
    times: Sequence[int],
    *,
    seed: int = 1,
    workers: int = 2,
    heartbeat: int = 2 * STEP,
    absent: AbsentFill | None = None,
) -> PrefillStats:
    """Write the simulated week: generated rows per chunk of time, then the extra (Munin, health) rows.

    ``absent``: the collector's record of dynamic counts; the names written are entered as reported at
    the last time, so the collector writes 0 for those its first runs no longer see, as after a real run.
    """
    started = time.monotonic()
    writer = Prefill(archive, slurpers, heartbeat)
    for rows in generate(sources, times, seed, workers):
        writer.write(rows)
    if extra_rows:
        writer.write(sorted(extra_rows, key=lambda r: r[1]))
    if absent is not None and times:
        for sid, names in writer.counted.items():
            slurper = writer.slurpers[sid]

            def when_absent(name: str, s: Slurper[Any] = slurper) -> float | None:
                return s.spec_for(name).when_absent

            absent.fill(sid, names, when_absent, times[-1])
    writer.stats.seconds = time.monotonic() - started
    return writer.stats

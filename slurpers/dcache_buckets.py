"""Event-time buckets with a checkpoint that survives crashes, late rows and duplicates (pure: no I/O).

Bucket k is ``[k*step, (k+1)*step)`` in UTC epoch seconds; its readings carry the time ``(k+1)*step``.
A run does three things, in this order:

1. **Emit** the readings *prepared by the previous run*, exactly as the committed state holds them. What
   is archived is thus a function of the committed checkpoint alone: after a crash between archive and
   checkpoint the same readings are emitted again and the archive skips them as old, so nothing counts
   twice and nothing is lost (the price: a bucket reaches the archive one run after it closed).
2. **Re-count** (every ``reconcile_every``) the buckets closed within ``late_horizon`` with one
   ``GROUP BY`` per table; a bucket whose row count rose is read again and what it gained (never a
   loss) goes into ``pending``, counted in ``slurper.late``.
3. **Prepare** the buckets closed since (at most ``CHUNK`` seconds of them: a backfill goes oldest
   first in bounded steps): a reading for every known series, 0 included, ``pending`` added to the
   newest one. They go into the new state, which rexmon commits only after this run's readings are
   archived.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from slurpers.api import Reading
from slurpers.dcache_classify import CATEGORIES, GAUGES, Tally

log = logging.getLogger(__name__)
STATE_VERSION = 1
#: at most this much event time is prepared in one run (a backfill or a catch-up goes in such steps)
CHUNK = 3600
#: a dynamic series (a door, a VO, an error code) with nothing for this long stops being written
FORGET_AFTER = 7 * 86400
Interval = tuple[int, int]


def static_series() -> list[str]:
    """The ABSOLUTE series written for every bucket from the first run on."""
    out = [f"{c}.{k}" for c in CATEGORIES for k in ("bytes", "transfers", "failed")]
    out += [f"tape.{a}.{k}" for a in ("store", "restore") for k in ("files", "bytes", "failed")]
    out += ["cache.hits", "cache.misses", "anomaly.negative_size", "anomaly.ambiguous_time"]
    out += ["anomaly.bad_number", "slurper.rows", "slurper.late", "slurper.duplicates"]
    return out


STATIC = tuple(static_series())
GAUGE_SERIES = tuple(f"{g}.{k}" for g in GAUGES for k in ("mean", "max"))


class Source(Protocol):
    """What the engine needs from the database (``slurpers.dcache`` implements it with SQL)."""

    tables: Sequence[str]

    def tallies(self, table: str, span: Interval) -> dict[int, Tally]: ...

    def counts(self, table: str, span: Interval) -> dict[int, int]: ...

    def newest(self, span: Interval) -> float | None: ...

    def db_seconds(self) -> float: ...


@dataclass(frozen=True)
class Plan:
    """The settings the engine uses (seconds)."""

    step: int
    lag: float
    late_horizon: float
    reconcile_every: float
    backfill: float


@dataclass
class State:
    """The checkpoint (JSON): see the module docstring."""

    W: int  # every bucket ending at or before W is prepared
    origin: int  # where counting began (the first run's W)
    step: int  # the bucket width the records are keyed by
    reconciled: float = 0.0
    #: bucket index -> table -> [raw rows, {series: sum}] for the re-count
    records: dict[int, dict[str, tuple[int, dict[str, int]]]] = field(default_factory=dict)
    pending: Counter[str] = field(default_factory=Counter)
    #: dynamic series -> end of the last bucket it was non-zero in
    series: dict[str, int] = field(default_factory=dict)
    #: [metric, time, value] to emit on the next run
    prepared: list[tuple[str, int, float | None]] = field(default_factory=list)

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> State | None:
        if raw.get("version") != STATE_VERSION:
            return None
        return cls(
            W=int(raw["W"]),
            origin=int(raw["origin"]),
            step=int(raw.get("step", 0)),
            reconciled=float(raw.get("reconciled", 0.0)),
            records={
                int(k): {t: (int(n), dict(s)) for t, (n, s) in v.items()} for k, v in raw["records"].items()
            },
            pending=Counter(raw.get("pending", {})),
            series=dict(raw.get("series", {})),
            prepared=[(str(m), int(t), v) for m, t, v in raw.get("prepared", [])],
        )

    def dump(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "W": self.W,
            "origin": self.origin,
            "step": self.step,
            "reconciled": self.reconciled,
            "records": {str(k): {t: [n, s] for t, (n, s) in v.items()} for k, v in self.records.items()},
            "pending": {k: v for k, v in self.pending.items() if v},
            "series": self.series,
            "prepared": [list(p) for p in self.prepared],
        }


def poll(
    raw_state: Mapping[str, Any], now: float, source: Source, plan: Plan
) -> tuple[list[Reading], dict[str, Any]]:
    """One run: (readings to archive now, the state to commit once they are archived)."""
    step = plan.step
    target = int((now - plan.lag) // step) * step
    state = State.load(raw_state)
    if state is not None and state.step != step:
        # the step changed (with [archive] step, on new files): the old buckets do not fit the new grid
        log.warning("dcache: checkpoint made with another step; starting over at now - lag - backfill")
        state = None
    elif state is None and raw_state:
        log.warning("dcache: checkpoint of an unknown version; starting over at now - lag - backfill")
    if state is None:
        w0 = int((now - plan.lag - plan.backfill) // step) * step
        state = State(W=w0, origin=w0, step=step, reconciled=now)
    readings = [Reading(m, v, t) for m, t, v in state.prepared]
    state.prepared = []
    if now - state.reconciled >= plan.reconcile_every:
        reconcile(state, source, plan)
        state.reconciled = now
    hi = min(target, state.W + max(CHUNK // step, 1) * step)
    if hi > state.W:
        prepare(state, source, plan, (state.W, hi), now)
        state.W = hi
    oldest = (target - int(plan.late_horizon)) // step
    state.records = {k: v for k, v in state.records.items() if k >= oldest}
    return readings, state.dump()


def prepare(state: State, source: Source, plan: Plan, span: Interval, now: float) -> None:
    """Count the buckets of ``span`` and turn them into readings for the next run."""
    step = plan.step
    per_table = {t: source.tallies(t, span) for t in source.tables}
    newest = source.newest((int(now - plan.late_horizon), int(now) + 1))
    lag = None if newest is None else round(now - newest, 3)
    query_time = round(source.db_seconds(), 6)
    first, last = span[0] // step, span[1] // step - 1
    for k in range(first, last + 1):
        end = (k + 1) * step
        sums: Counter[str] = Counter()
        samples = Tally()
        record: dict[str, tuple[int, dict[str, int]]] = {}
        for table, tallies in per_table.items():
            tally = tallies.get(k)
            if tally is None:
                continue
            sums.update(tally.sums)
            for family, got in tally.samples.items():
                samples.samples.setdefault(family, []).extend(got)
            record[table] = (tally.raw, {s: v for s, v in tally.sums.items() if v})
        if record:
            state.records[k] = record
        if k == last:
            sums.update(state.pending)
            state.pending = Counter()
        _emit_bucket(state, sums, samples, end, step)
        state.prepared += [("slurper.lag", end, lag), ("slurper.query_time", end, query_time)]


def _emit_bucket(state: State, sums: Counter[str], samples: Tally, end: int, step: int) -> None:
    for name, value in sums.items():
        if value and name not in STATIC:
            if name not in state.series:
                # a new (or forgotten) series: 0 at the bucket's start so its first value has a full step
                state.prepared.append((name, end - step, 0))
            state.series[name] = end
    for name in [n for n, seen in state.series.items() if end - seen > FORGET_AFTER]:
        del state.series[name]
    for name in (*STATIC, *sorted(state.series)):
        state.prepared.append((name, end, int(sums.get(name, 0))))
    state.prepared += [(name, end, value) for name, value in samples.gauges().items()]


def reconcile(state: State, source: Source, plan: Plan) -> None:
    """Re-count the recorded buckets; read again those whose count rose and keep what they gained."""
    step = plan.step
    lo, hi = max(state.origin, state.W - int(plan.late_horizon)) // step, state.W // step
    if hi <= lo:
        return
    for table in source.tables:
        counts = source.counts(table, (lo * step, hi * step))
        rose = [k for k, n in counts.items() if lo <= k < hi and n > _raw(state, k, table)]
        for k in [k for k in state.records if lo <= k < hi]:
            old, n = _raw(state, k, table), counts.get(k, 0)
            if n < old:
                log.warning(
                    "dcache: %s lost rows in the bucket ending %d (%d -> %d): deleted or truncated; "
                    "nothing is subtracted",
                    table, (k + 1) * step, old, n,
                )  # fmt: skip
                state.records.setdefault(k, {})[table] = (n, state.records[k][table][1])
        if not rose:
            continue
        again = source.tallies(table, (min(rose) * step, (max(rose) + 1) * step))
        for k in rose:
            _gain(state, k, table, again.get(k, Tally()))


def _raw(state: State, k: int, table: str) -> int:
    return state.records.get(k, {}).get(table, (0, {}))[0]


def _gain(state: State, k: int, table: str, tally: Tally) -> None:
    old_raw, old = state.records.get(k, {}).get(table, (0, {}))
    merged = dict(old)
    for name, value in tally.sums.items():
        gained = value - old.get(name, 0)
        if gained > 0:
            state.pending[name] += gained
            merged[name] = value
    late = tally.sums["slurper.rows"] - old.get("slurper.rows", 0)
    if late > 0:
        state.pending["slurper.late"] += late
    state.records.setdefault(k, {})[table] = (max(tally.raw, old_raw), merged)

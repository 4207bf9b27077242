"""What the pages show, read from the archive and the database (the web never writes the archive).

Values come from the archive (:mod:`web.latest`), alarm states from ``alarms.store`` and downtimes from
``downtime.store``.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from alarms.ranges import RangeError, parse_range
from alarms.state import SEVERITY_ORDER, MetricState
from alarms.store import current_states
from downtime.db import make_engine
from downtime.index import DowntimeIndex
from downtime.store import DowntimeStore
from downtime.windows import Window
from rexmon.config import Config
from rrd.archive import Archive
from rrd.graph import Band, GraphRenderer, Rule
from web.latest import Latest, LatestCache, MetricIds

log = logging.getLogger(__name__)

#: overview icons, problems first; the rank sorts rows and slurpers
ICONS: tuple[str, ...] = ("critical", "unknown", "warning", "stale", "acknowledged", "downtime", "ok")
ICON_LABELS = {
    "critical": "CRITICAL",
    "unknown": "UNKNOWN",
    "warning": "WARNING",
    "stale": "stale",
    "acknowledged": "acknowledged",
    "downtime": "in downtime",
    "ok": "OK",
}


@dataclass(frozen=True)
class MetricRow:
    metric_id: str
    slurper: str
    name: str
    group: str
    value: float | None
    time: int | None
    state: str
    icon: str
    since: float | None = None
    warning: str | None = None
    critical: str | None = None
    downtime_id: int | None = None
    ack_comment: str = ""
    #: the raw archived value when ``value`` is a counter's rate; ``unit`` is then "/s"
    raw: float | None = None
    unit: str = ""

    @functools.cached_property  # sorting 10,000 rows asks often
    def rank(self) -> tuple[int, int]:
        return ICONS.index(self.icon), SEVERITY_ORDER.get(self.state, 9)

    @property
    def label(self) -> str:
        return ICON_LABELS[self.icon]


@dataclass
class SlurperRow:
    id: str
    metrics: list[MetricRow] = field(default_factory=list)
    stale: bool = False

    @property
    def worst(self) -> MetricRow | None:
        return min(self.metrics, key=lambda r: r.rank, default=None)

    @property
    def rank(self) -> tuple[int, int]:
        worst = self.worst
        own = worst.rank if worst else (len(ICONS), 9)
        return (min(own[0], ICONS.index("stale")), own[1]) if self.stale else own

    def groups(self) -> dict[str, list[MetricRow]]:
        out: dict[str, list[MetricRow]] = {}
        for row in sorted(self.metrics, key=lambda r: r.name):
            out.setdefault(row.group, []).append(row)
        return out


@dataclass
class Overview:
    slurpers: list[SlurperRow]
    counts: dict[str, int]
    now: float


def group_of(name: str) -> str:
    """The graph key of a metric name: everything before its last dot (Munin's ``<graph>.<field>``)."""
    return name.rsplit(".", 1)[0] if "." in name else ""


def thresholds(warning: str | None, critical: str | None) -> list[Rule]:
    """Horizontal lines at the finite bounds of the warning and critical ranges."""
    rules = []
    for level, text in (("warning", warning), ("critical", critical)):
        if not text:
            continue
        try:
            rng = parse_range(text)
        except RangeError:
            continue
        bounds = {rng.end, rng.start} if ":" in text else {rng.end}
        for value in sorted(b for b in bounds if math.isfinite(b)):
            rules.append(Rule(value, f"{level} {text}", level))  # type: ignore[arg-type]
    return rules


def band_label(w: Window) -> str:
    who = f" by {w.author}" if w.author else ""
    return f"{w.severity} #{w.downtime_id}: {w.reason or 'downtime'}{who}"


def matching(windows: Sequence[Window], metric_id: str, t0: float, t1: float) -> list[Window]:
    """Windows whose scope matches ``metric_id`` and that overlap ``[t0, t1)``."""
    return DowntimeIndex(windows).overlapping(metric_id, t0, t1)


class Monitor:
    """The read side of rexmon: archive, alarm states, downtimes."""

    def __init__(self, config: Config, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        # rrdcached away: pages show the files as on disk (minutes old) with a banner, not an error; a
        # peer that does not answer holds a page for at most 5 s, then FLUSH_RETRY_SECONDS none
        self.archive = Archive(
            config.rrd_dir, config.archive.step, config.rrdcached, flush_errors="warn", timeout=5.0
        )
        self.latest = LatestCache(self.archive)
        self.metric_ids = MetricIds(config.rrd_dir)
        self.renderer = GraphRenderer(self.archive, config.resolve(config.web.graph_cache_dir), clock)
        self._engine: Engine | None = None
        self.intervals = {s.id: s.interval for s in config.slurpers}

    # -- database ----------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.config.database_url)
        return self._engine

    def store(self) -> DowntimeStore:
        return DowntimeStore(self.engine)

    def states(self) -> dict[str, MetricState]:
        try:
            return {s.metric_id: s for s in current_states(self.engine)}
        except Exception as exc:  # an unmigrated or unreachable database: show the archive alone
            log.warning("alarm states unavailable: %s", exc)
            return {}

    def windows(self, t0: float, t1: float) -> list[Window]:
        try:
            return self.store().windows(t0, t1)
        except Exception as exc:
            log.warning("downtimes unavailable: %s", exc)
            return []

    def current(self, now: float) -> DowntimeIndex:
        """The downtime windows covering ``now``, indexed by scope."""
        return DowntimeIndex([w for w in self.windows(now, now + 1) if w.covers_time(now)])

    # -- rows --------------------------------------------------------------------------------------
    def stale_after(self, slurper: str) -> float:
        interval = self.intervals.get(slurper, float(self.config.archive.step))
        return 3 * max(interval, float(self.config.archive.step))

    def row(self, mid: str) -> MetricRow | None:
        """One metric's row, or None when it has no file."""
        latest = self.latest.get(mid)
        if latest is None:
            return None
        now = self.clock()
        stale_after = self.stale_after(mid.split("/")[0])
        return make_row(mid, latest, self.states().get(mid), self.current(now), now, stale_after)

    def overview(self, metric_ids: Sequence[str] | None = None) -> Overview:
        now = self.clock()
        ids = list(metric_ids) if metric_ids is not None else self.metric_ids()
        last = self.latest.get_many(ids)
        states = self.states()
        current = self.current(now)
        stale_after = {s: self.stale_after(s) for s in {m.split("/", 1)[0] for m in ids}}
        slurpers: dict[str, SlurperRow] = {}
        for mid in ids:
            row = make_row(
                mid, last.get(mid), states.get(mid), current, now, stale_after[mid.split("/", 1)[0]]
            )
            slurpers.setdefault(row.slurper, SlurperRow(row.slurper)).metrics.append(row)
        counts = dict.fromkeys(ICONS, 0)
        for srow in slurpers.values():
            newest = max((r.time or 0 for r in srow.metrics), default=0)
            srow.stale = now - newest > stale_after[srow.id]
            srow.metrics.sort(key=lambda r: (r.rank, r.name))
            for r in srow.metrics:
                counts[r.icon] += 1
        ordered = sorted(slurpers.values(), key=lambda s: (s.rank, s.id))
        return Overview(ordered, counts, now)

    def bands(self, metric_ids: Sequence[str], t0: float, t1: float) -> list[tuple[Window, Band]]:
        index = DowntimeIndex(self.windows(t0, t1))
        seen: dict[tuple[int, float], tuple[Window, Band]] = {}
        for mid in metric_ids:
            for w in index.overlapping(mid, t0, t1):
                band = Band(max(w.start, t0), min(w.end, t1), band_label(w), w.severity)
                seen.setdefault((w.downtime_id, w.start), (w, band))
        return sorted(seen.values(), key=lambda p: p[0].start)


def make_row(
    mid: str,
    latest: Latest | None,
    state: MetricState | None,
    current: DowntimeIndex,
    now: float,
    stale_after: float,
) -> MetricRow:
    """One metric's row: its alarm state when the engine has one, else one derived from the data."""
    slurper, _, name = mid.partition("/")
    t, value = (latest.time, latest.value) if latest else (None, None)
    stale = t is None or now - t > stale_after
    downtimes = current.covering(mid, now) if current.windows else []
    if state is not None:
        st, since, warn, crit = state.state, state.since, state.warning, state.critical
        stale = stale or state.stale
        dt_id = state.downtime_id if state.in_downtime else None
        in_dt, acked = state.in_downtime or bool(downtimes), state.acknowledged
    else:
        st = "UNKNOWN" if stale or latest is None or latest.raw is None else "OK"
        since, warn, crit, dt_id, acked, in_dt = None, None, None, None, False, bool(downtimes)
    if in_dt:
        icon = "downtime"
        dt_id = dt_id or (downtimes[0].downtime_id if downtimes else None)
    elif acked and st != "OK":
        icon = "acknowledged"
    elif stale and st != "CRITICAL":
        icon = "stale"
    else:
        icon = st.lower()
    return MetricRow(
        mid, slurper, name, group_of(name), value, t, st, icon, since, warn, crit, dt_id,
        state.ack_comment if state else "",
        latest.raw if latest and latest.is_rate else None,
        latest.unit if latest else "",
    )  # fmt: skip

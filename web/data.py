"""What the pages show, read from the archive and the database (the web never writes the archive).

Values come from the archive (:mod:`web.latest`), alarm states from ``alarms.store`` and downtimes from
``downtime.store``.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Engine, Table, select

from alarms.catalogue import UNKNOWN_META, CatalogueReader, MetricMeta
from alarms.ranges import RangeError, parse_range
from alarms.state import SEVERITY_ORDER, MetricState
from alarms.store import AlarmStateRow, current_states, row_to_record, to_metric_state
from downtime.db import make_engine
from downtime.index import DowntimeIndex
from downtime.store import DowntimeStore
from downtime.windows import Window
from rexmon.config import Config
from rrd.archive import Archive
from rrd.graph import GraphRenderer
from rrd.graphargs import Band, Rule
from web.latest import Latest, LatestCache, MetricIds
from web.rpn import shown_value
from web.units import format_value, normalize, rate_unit

log = logging.getLogger(__name__)

#: overview icons, problems first; the rank sorts rows and slurpers. ``unjudged``: no rule covers the
#: metric, so nobody checks it (grey, counted apart, never shown as OK)
ICONS: tuple[str, ...] = (
    "critical", "unknown", "warning", "stale", "acknowledged", "downtime", "ok", "unjudged",
)  # fmt: skip
#: the state of a metric that the alarm engine does not judge (no ``[[alarm]]`` rule, no slurper default)
UNJUDGED = "UNJUDGED"
ICON_LABELS = {
    "critical": "CRITICAL",
    "unknown": "UNKNOWN",
    "warning": "WARNING",
    "stale": "stale",
    "acknowledged": "acknowledged",
    "downtime": "in downtime",
    "ok": "OK",
    "unjudged": "unjudged",
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
    #: the raw archived value when ``value`` is a counter's rate; ``unit`` is then a rate (``B/s``)
    raw: float | None = None
    #: the unit of ``value`` as shown (normalized: ``B``, ``B/s``, ``jobs``), and its multiples' base
    unit: str = ""
    base: int = 1000
    #: the slurper's label for the metric (Munin's field label) and the name of the rule judging it
    title: str = ""
    rule: str | None = None

    @property
    def display(self) -> str:
        """The value with its unit and an SI/IEC prefix: ``69.6 MiB``, ``72.4 MB/s``."""
        return format_value(self.value, self.unit, self.base)

    @property
    def raw_display(self) -> str:
        """A counter's raw archived value, in the metric's own unit."""
        return format_value(self.raw, self.unit.removesuffix("/s"), self.base)

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

    @property
    def stale(self) -> bool:
        """Every metric the engine judges is stale (the engine's word; unjudged metrics are not asked)."""
        judged = [r for r in self.metrics if r.state != UNJUDGED]
        return bool(judged) and all(r.icon == "stale" or r.state == "UNKNOWN" for r in judged)

    @property
    def worst(self) -> MetricRow | None:
        return min(self.metrics, key=lambda r: r.rank, default=None)

    @property
    def rank(self) -> tuple[int, int]:
        worst = self.worst
        return worst.rank if worst else (len(ICONS), 9)

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
        self.latest = LatestCache(self.archive.reader)
        self.metric_ids = MetricIds(config.rrd_dir)
        self.renderer = GraphRenderer(self.archive, config.resolve(config.web.graph_cache_dir), clock)
        self._engine: Engine | None = None
        self.catalogue = CatalogueReader()

    def close(self) -> None:
        """Drop the connections to rrdcached and the database (a later read opens new ones)."""
        self.archive.reader.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

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

    def meta(self) -> Mapping[str, MetricMeta]:
        """Each metric's unit, base, label and graph key, as the collectors recorded them."""
        return self.catalogue.get(self.engine)

    def states_of(self, metric_ids: Sequence[str]) -> dict[str, MetricState]:
        """The alarm states of just these metrics (a page showing a few rows of 100,000)."""
        t = cast(Table, AlarmStateRow.__table__)
        out: dict[str, MetricState] = {}
        try:
            with self.engine.connect() as conn:
                for i in range(0, len(metric_ids), 500):
                    chunk = metric_ids[i : i + 500]
                    for row in conn.execute(select(t).where(t.c.metric_id.in_(chunk))).mappings():
                        out[row["metric_id"]] = to_metric_state(row_to_record(row))
        except Exception as exc:  # an unmigrated or unreachable database: show the archive alone
            log.warning("alarm states unavailable: %s", exc)
        return out

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
    def row(self, mid: str) -> MetricRow | None:
        """One metric's row, or None when it has no file (a file that cannot be read has a row, valueless,
        so its page and graph say what is wrong instead of 'no such metric')."""
        latest = self.latest.get(mid)
        if latest is None and mid not in self.metric_ids():
            return None
        now = self.clock()
        meta = self.meta().get(mid, UNKNOWN_META)
        return make_row(mid, latest, self.states().get(mid), self.current(now), now, meta)

    def rows(
        self, metric_ids: Sequence[str], states: Mapping[str, MetricState] | None = None
    ) -> list[MetricRow]:
        """Rows with values for just these metrics (only their files are flushed and read)."""
        now = self.clock()
        last = self.latest.get_many(metric_ids)
        states = self.states_of(metric_ids) if states is None else states
        meta, current = self.meta(), self.current(now)
        return [
            make_row(mid, last.get(mid), states.get(mid), current, now, meta.get(mid, UNKNOWN_META))
            for mid in metric_ids
        ]

    def overview(self, metric_ids: Sequence[str] | None = None) -> Overview:
        now = self.clock()
        ids = list(metric_ids) if metric_ids is not None else self.metric_ids()
        last = self.latest.get_many(ids)
        states = self.states()
        meta = self.meta()
        current = self.current(now)
        slurpers: dict[str, SlurperRow] = {}
        for mid in ids:
            row = make_row(mid, last.get(mid), states.get(mid), current, now, meta.get(mid, UNKNOWN_META))
            slurpers.setdefault(row.slurper, SlurperRow(row.slurper)).metrics.append(row)
        counts = dict.fromkeys(ICONS, 0)
        for srow in slurpers.values():
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


def icon_for(
    mid: str, state: MetricState | None, current: DowntimeIndex, now: float
) -> tuple[str, int | None]:
    """The overview icon of a metric and the downtime shown for it, from the engine's state alone.

    Nothing is judged here: staleness, UNKNOWN and downtimes of judged metrics are the engine's; a
    metric without an engine state is unjudged whatever its value or age. A downtime filed since the
    engine's last round (or for an unjudged metric) is a fact, shown at once.
    """
    if state is None or not state.in_downtime:
        covering = current.covering(mid, now) if current.windows else []
        if covering:
            return "downtime", covering[0].downtime_id
        if state is None:
            return "unjudged", None
    elif state.in_downtime:
        return "downtime", state.downtime_id
    if state.acknowledged and state.state != "OK":
        return "acknowledged", None
    if state.stale and state.state != "CRITICAL":
        return "stale", None
    return state.state.lower(), None


def make_row(
    mid: str,
    latest: Latest | None,
    state: MetricState | None,
    current: DowntimeIndex,
    now: float,
    meta: MetricMeta = UNKNOWN_META,
) -> MetricRow:
    """One metric's row: the alarm engine's state (see :func:`icon_for`), or UNJUDGED without one."""
    slurper, _, name = mid.partition("/")
    t, value = (latest.time, latest.value) if latest else (None, None)
    value = shown_value(meta.cdef, mid, value)  # Munin's cdef: the value as the graphs draw it
    is_rate = latest is not None and latest.is_rate
    unit = rate_unit(meta.unit) if is_rate else normalize(meta.unit)
    icon, dt_id = icon_for(mid, state, current, now)
    raw = latest.raw if is_rate and latest else None
    graph = meta.graph or group_of(name)
    if state is None:
        return MetricRow(
            mid, slurper, name, graph, value, t, UNJUDGED, icon, downtime_id=dt_id, raw=raw, unit=unit,
            base=meta.base, title=meta.label,
        )  # fmt: skip
    return MetricRow(
        mid, slurper, name, graph, value, t, state.state, icon, state.since, state.warning, state.critical,
        dt_id, state.ack_comment, raw, unit, meta.base, meta.label, state.rule or None,
    )  # fmt: skip

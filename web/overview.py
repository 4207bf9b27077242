"""The overview's summary: slurpers, then their graph groups, each with its worst state and counts.

Built from what costs no archive read: the metric ids (directory listings, cached), the alarm engine's
states, the current downtimes and the metric catalogue's graph keys. Values are read only for what the
page shows as items: the metrics that need someone, the silenced ones and the groups left open
(:meth:`web.data.Monitor.rows`), so an overview of 100,000 metrics flushes and reads a handful of files.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from sqlalchemy import Engine, Table, case, func, select

from alarms.catalogue import MetricMeta
from alarms.store import AlarmStateRow
from downtime.index import DowntimeIndex
from web.data import ICONS, Monitor, group_of

log = logging.getLogger(__name__)

#: states that need someone, in the order the page lists them
PROBLEMS: tuple[str, ...] = ("critical", "unknown", "warning", "stale")
#: problems someone already took (acknowledged) or that a downtime covers
SILENCED: tuple[str, ...] = ("acknowledged", "downtime")
_RANK = {icon: i for i, icon in enumerate(ICONS)}


class Item(NamedTuple):
    """A metric as the summary knows it: no value, just its icon (a tuple: 100,000 are made a request)."""

    metric_id: str
    name: str
    icon: str
    state: str


@dataclass(frozen=True)
class Judged:
    """The part of an engine state the overview's icon needs (one narrow read per request)."""

    state: str
    stale: bool
    acked: bool
    downtime_id: int | None


class Lookup:
    """What a group needs to list its items on demand: the ids, their shapes and non-grey icons."""

    def __init__(
        self, ids: Sequence[str], shapes: Shapes, icons: Mapping[int, str], judged: Mapping[str, Judged]
    ):
        self.ids, self.shapes, self.icons, self.judged = ids, shapes, icons, judged

    def item(self, k: int) -> Item:
        mid = self.ids[k]
        j = self.judged.get(mid)
        return Item(mid, self.shapes.names[k], self.icons.get(k, "unjudged"), j.state if j else "UNJUDGED")


@dataclass
class Group:
    """One graph group of a slurper (``MetricSpec.graph``, Munin's graph; else the name's prefix)."""

    slurper: str
    graph: str
    counts: dict[str, int] = field(default_factory=dict)
    #: indices of the group's metrics in the summary's ids (the filtered ones, with a filter)
    members: list[int] = field(default_factory=list)
    lookup: Lookup | None = None

    @property
    def key(self) -> str:
        return f"{self.slurper}/{self.graph}"

    @property
    def items(self) -> list[Item]:
        """The group's metrics, made when asked (a folded group never is)."""
        lookup = self.lookup
        return [] if lookup is None else [lookup.item(k) for k in self.members]

    @property
    def worst(self) -> str:
        return min(self.counts, key=_RANK.__getitem__, default="unjudged")

    @property
    def needs_someone(self) -> bool:
        return any(self.counts.get(icon) for icon in PROBLEMS)


@dataclass
class SlurperSummary:
    id: str
    groups: list[Group] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def worst(self) -> str:
        return min(self.counts, key=_RANK.__getitem__, default="unjudged")


@dataclass(frozen=True)
class Filter:
    """What the page asks for: words that must all occur in "id state", icons, problems only."""

    words: tuple[str, ...] = ()
    icons: frozenset[str] = frozenset()
    problems_only: bool = False

    @classmethod
    def parse(cls, q: str, states: str, problems: bool) -> Filter:
        icons = frozenset(s for s in states.lower().split(",") if s in ICONS)
        return cls(tuple(q.lower().split()), icons, problems)

    @property
    def active(self) -> bool:
        return bool(self.words or self.icons or self.problems_only)

    def keeps(self, item: Item) -> bool:
        if self.problems_only and item.icon not in PROBLEMS:
            return False
        if self.icons and item.icon not in self.icons:
            return False
        text = f"{item.metric_id} {item.icon} {item.state}".lower()
        return all(w in text for w in self.words)


#: no filter: every metric
EVERYTHING = Filter()


@dataclass
class Summary:
    slurpers: list[SlurperSummary]
    counts: dict[str, int]
    #: metrics that need someone (critical, unknown, warning, stale), worst first
    attention: list[Item]
    #: acknowledged and in-downtime metrics
    silenced: list[Item]
    now: float
    matched: int = 0


class Shapes:
    """Which slurper and graph group each metric id belongs to (built once per listing and catalogue).

    At 100,000 metrics splitting ids and looking up graph keys is most of a request; both change only
    when a file or a catalogue row is added. A built ``Shapes`` is never changed (requests running
    at the same time may hold it); :class:`ShapeCache` builds a new one when needed.
    """

    def __init__(self, ids: Sequence[str], meta: Mapping[str, MetricMeta], version: int) -> None:
        # holding ``meta`` keeps its id from being reused while this is cached (the cache keys on it)
        self.ids, self.meta, self.version = ids, meta, version
        numbers: dict[tuple[str, str], int] = {}
        names: list[str] = []
        groups: list[tuple[str, str]] = []
        members: list[list[int]] = []
        for k, mid in enumerate(ids):
            slurper, _, name = mid.partition("/")
            m = meta.get(mid)
            gkey = (slurper, m.graph if m is not None and m.graph else group_of(name))
            g = numbers.get(gkey)
            if g is None:
                g = numbers[gkey] = len(groups)
                groups.append(gkey)
                members.append([])
            members[g].append(k)
            names.append(name)
        #: per id its name; per group (slurper, graph) and its members (indices into ``ids``)
        self.names, self.groups, self.members = names, groups, members
        self.index = {mid: k for k, mid in enumerate(ids)}


class ShapeCache:
    """The newest :class:`Shapes` of one monitor, rebuilt when the listing or the catalogue changes."""

    def __init__(self) -> None:
        self._shapes: Shapes | None = None
        self._lock = threading.Lock()

    def get(self, ids: Sequence[str], meta: Mapping[str, MetricMeta]) -> Shapes:
        with self._lock:
            old = self._shapes
            if old is not None and meta is old.meta and (ids is old.ids or ids == old.ids):
                return old
            self._shapes = Shapes(ids, meta, next(_BUILDS))
            return self._shapes


def summarize(
    ids: Sequence[str],
    judged: Mapping[str, Judged],
    shapes: Shapes,
    current: DowntimeIndex,
    now: float,
    want: Filter = EVERYTHING,
) -> Summary:
    """Group ``ids`` by slurper and graph; count icons (over every metric, whatever ``want`` keeps).

    Only metrics that are not plain unjudged cost anything: the judged ones, and with downtimes in
    force every id (a downtime's scope is a glob).
    """
    icons = _icons(ids, judged, shapes, current, now)
    counts = dict.fromkeys(ICONS, 0)
    counts["unjudged"] = len(ids) - len(icons)
    for icon in icons.values():
        counts[icon] += 1
    lookup = Lookup(ids, shapes, icons, judged)
    members = _filtered(lookup, want) if want.active else shapes.members
    slurpers = _slurpers(lookup, members)
    attention: list[Item] = []
    silenced: list[Item] = []
    matched = sum(len(m) for m in members)
    for k in sorted({k for g in members for k in g} if want.active else icons):
        icon = icons.get(k, "unjudged")
        if icon in PROBLEMS:
            attention.append(lookup.item(k))
        elif icon in SILENCED:
            silenced.append(lookup.item(k))
    for s in slurpers.values():
        s.groups.sort(key=lambda g: (_RANK[g.worst], g.graph))
    ordered = sorted(slurpers.values(), key=lambda s: (_RANK[s.worst], s.id))
    attention.sort(key=lambda i: (_RANK[i.icon], i.metric_id))
    silenced.sort(key=lambda i: (_RANK[i.icon], i.metric_id))
    return Summary(ordered, counts, attention, silenced, now, matched)


def _icons(
    ids: Sequence[str], judged: Mapping[str, Judged], shapes: Shapes, current: DowntimeIndex, now: float
) -> dict[int, str]:
    """The icon of every metric that is not plain unjudged, by index."""
    icons: dict[int, str] = {}
    covering = current.covering if current.windows else None
    if covering is not None:
        for k, mid in enumerate(ids):
            icon = _icon(mid, judged.get(mid), covering, now)
            if icon != "unjudged":
                icons[k] = icon
        return icons
    index = shapes.index
    for mid, j in judged.items():
        found = index.get(mid)
        if found is not None:  # a state of a metric whose file is gone is not shown
            icons[found] = _icon(mid, j, None, now)
    return icons


def _slurpers(lookup: Lookup, members: Sequence[list[int]]) -> dict[str, SlurperSummary]:
    """Groups with their counts, under their slurpers (groups with no member kept are left out)."""
    shapes, icons = lookup.shapes, lookup.icons
    slurpers: dict[str, SlurperSummary] = {}
    for g, (slurper, graph) in enumerate(shapes.groups):
        kept = members[g]
        if not kept:
            continue
        gcounts: dict[str, int] = {}
        for k in kept:
            icon = icons.get(k)
            if icon is not None:
                gcounts[icon] = gcounts.get(icon, 0) + 1
        plain = len(kept) - sum(gcounts.values())
        if plain:
            gcounts["unjudged"] = plain
        summ = slurpers.get(slurper)
        if summ is None:
            summ = slurpers[slurper] = SlurperSummary(slurper)
        summ.groups.append(Group(slurper, graph, gcounts, kept, lookup))
        for icon, n in gcounts.items():
            summ.counts[icon] = summ.counts.get(icon, 0) + n
    return slurpers


def _filtered(lookup: Lookup, want: Filter) -> list[list[int]]:
    """Each group's members that ``want`` keeps (a filter looks at every metric)."""
    return [[k for k in group if want.keeps(lookup.item(k))] for group in lookup.shapes.members]


def _icon(mid: str, j: Judged | None, covering: Any, now: float) -> str:
    """What :func:`web.data.icon_for` decides, from the narrow :class:`Judged` read."""
    if j is None:
        return "downtime" if covering is not None and covering(mid, now) else "unjudged"
    if j.downtime_id is not None or (covering is not None and covering(mid, now)):
        return "downtime"
    if j.acked and j.state != "OK":
        return "acknowledged"
    if j.stale and j.state != "CRITICAL":
        return "stale"
    return j.state.lower()


#: (database URL) -> (fingerprint, read number, the states read then)
_JUDGED: dict[str, tuple[tuple[Any, ...], int, dict[str, Judged]]] = {}
_READS = itertools.count(1)
_SUMMARIES: dict[tuple[Any, ...], Summary] = {}


def read_judged(db: Engine) -> tuple[int, dict[str, Judged]]:
    """The engine's states, only the columns the icons need, and a number that changes when they do.

    A fingerprint (count and sums of the icon columns, one scan inside the database) decides whether
    the rows are read again: the engine rewrites every judged row each round, but their icons rarely
    change.
    """
    t = cast(Table, AlarmStateRow.__table__)
    url = str(db.url)
    try:
        with db.connect() as conn:
            mark = tuple(
                conn.execute(
                    select(
                        func.count(),
                        func.coalesce(func.sum(t.c.since), 0.0),
                        func.coalesce(func.sum(case((t.c.state == "OK", 0), else_=1)), 0),
                        func.coalesce(func.sum(case((t.c.stale, 1), else_=0)), 0),
                        func.coalesce(func.sum(case((t.c.acked, 1), else_=0)), 0),
                        func.coalesce(func.sum(t.c.downtime_id), 0),
                        func.count(t.c.downtime_id),
                    )
                ).one()
            )
            hit = _JUDGED.get(url)
            if hit is not None and hit[0] == mark:
                return hit[1], hit[2]
            rows = conn.execute(select(t.c.metric_id, t.c.state, t.c.stale, t.c.acked, t.c.downtime_id)).all()
    except Exception as exc:  # an unmigrated or unreachable database: show the archive alone
        log.warning("alarm states unavailable: %s", exc)
        return 0, {}
    judged = {r[0]: Judged(r[1], bool(r[2]), bool(r[3]), r[4]) for r in rows}
    number = next(_READS)
    _JUDGED[url] = (mark, number, judged)
    return number, judged


def summary(monitor: Monitor, want: Filter = EVERYTHING) -> Summary:
    """The summary of every metric of ``monitor``'s archive; reused while nothing it shows changed."""
    now = monitor.clock()
    ids = monitor.metric_ids()
    shapes = _shapes(monitor).get(ids, monitor.meta())
    read, judged = read_judged(monitor.engine)
    current = monitor.current(now)
    windows = tuple((w.downtime_id, w.start, w.end) for w in current.windows)
    key = (id(monitor), shapes.version, read, windows, want)
    hit = _SUMMARIES.get(key)
    if hit is None:
        if len(_SUMMARIES) > 16:
            _SUMMARIES.clear()
        hit = _SUMMARIES[key] = summarize(ids, judged, shapes, current, now, want)
    hit.now = now
    return hit


_SHAPES: weakref.WeakKeyDictionary[Monitor, ShapeCache] = weakref.WeakKeyDictionary()
_BUILDS = itertools.count(1)


def _shapes(monitor: Monitor) -> ShapeCache:
    found = _SHAPES.get(monitor)
    if found is None:
        found = _SHAPES[monitor] = ShapeCache()
    return found


def digest(text: str) -> str:
    """A short fingerprint of a rendered part (the refresh sends only parts whose digest changed)."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

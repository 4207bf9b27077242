"""The overview's summary: slurpers, then their graph groups, each with its worst state and counts.

Built from what costs no archive read: the metric ids (directory listings, cached), the alarm engine's
states, the current downtimes and the metric catalogue's graph keys. Values are read only for what the
page shows as items: the metrics that need someone, the silenced ones and the groups left open
(:meth:`web.data.Monitor.rows`), so an overview of 100,000 metrics flushes and reads a handful of files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from alarms.catalogue import MetricMeta
from alarms.state import MetricState
from downtime.index import DowntimeIndex
from web.data import ICONS, Monitor, group_of, icon_for

#: states that need someone, in the order the page lists them
PROBLEMS: tuple[str, ...] = ("critical", "unknown", "warning", "stale")
#: problems someone already took (acknowledged) or that a downtime covers
SILENCED: tuple[str, ...] = ("acknowledged", "downtime")
_RANK = {icon: i for i, icon in enumerate(ICONS)}


@dataclass(frozen=True)
class Item:
    """A metric as the summary knows it: no value, just its icon."""

    metric_id: str
    name: str
    icon: str
    state: str


@dataclass
class Group:
    """One graph group of a slurper (``MetricSpec.graph``, Munin's graph; else the name's prefix)."""

    slurper: str
    graph: str
    items: list[Item] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.slurper}/{self.graph}"

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


def summarize(
    ids: Sequence[str],
    states: Mapping[str, MetricState],
    meta: Mapping[str, MetricMeta],
    current: DowntimeIndex,
    now: float,
    want: Filter = EVERYTHING,
) -> Summary:
    """Group ``ids`` by slurper and graph; count icons (over every metric, whatever ``want`` keeps)."""
    counts = dict.fromkeys(ICONS, 0)
    slurpers: dict[str, SlurperSummary] = {}
    groups: dict[tuple[str, str], Group] = {}
    attention: list[Item] = []
    silenced: list[Item] = []
    matched = 0
    for mid in ids:
        slurper, _, name = mid.partition("/")
        state = states.get(mid)
        icon, _ = icon_for(mid, state, current, now)
        counts[icon] += 1
        item = Item(mid, name, icon, state.state if state else "UNJUDGED")
        if want.active and not want.keeps(item):
            continue
        matched += 1
        m = meta.get(mid)
        graph = m.graph if m is not None and m.graph else group_of(name)
        group = groups.get((slurper, graph))
        if group is None:
            group = groups[slurper, graph] = Group(slurper, graph)
            slurpers.setdefault(slurper, SlurperSummary(slurper)).groups.append(group)
        group.items.append(item)
        group.counts[icon] = group.counts.get(icon, 0) + 1
        if icon in PROBLEMS:
            attention.append(item)
        elif icon in SILENCED:
            silenced.append(item)
    for s in slurpers.values():
        for g in s.groups:
            for icon, n in g.counts.items():
                s.counts[icon] = s.counts.get(icon, 0) + n
        s.groups.sort(key=lambda g: (_RANK[g.worst], g.graph))
    ordered = sorted(slurpers.values(), key=lambda s: (_RANK[s.worst], s.id))
    attention.sort(key=lambda i: (_RANK[i.icon], i.metric_id))
    silenced.sort(key=lambda i: (_RANK[i.icon], i.metric_id))
    return Summary(ordered, counts, attention, silenced, now, matched)


def summary(monitor: Monitor, want: Filter = EVERYTHING) -> tuple[Summary, dict[str, MetricState]]:
    """The summary of every metric of ``monitor``'s archive (and the states it was built from)."""
    now = monitor.clock()
    states = monitor.states()
    built = summarize(monitor.metric_ids(), states, monitor.meta(), monitor.current(now), now, want)
    return built, states


def digest(text: str) -> str:
    """A short fingerprint of a rendered part (the refresh sends only parts whose digest changed)."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

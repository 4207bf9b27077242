"""Which downtime windows cover a metric at a time (the engine's view of downtimes)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from alarms.globs import GlobIndex
from downtime.windows import Window


class Coverage(Protocol):
    """Anything answering ``covering(metric_id, t)`` (e.g. ``downtime.index.DowntimeIndex``)."""

    def covering(self, metric_id: str, t: float) -> list[Window]:
        """The windows whose scope matches ``metric_id`` and which contain ``t``."""
        ...


class WindowIndex:
    """A :class:`Coverage` over a list of windows: scope globs bucketed, candidates cached per metric."""

    def __init__(self, windows: Iterable[Window]) -> None:
        self._windows = sorted(windows, key=lambda w: (w.start, w.downtime_id))
        self._index: GlobIndex[Window] = GlobIndex((w.scope, w) for w in self._windows)
        self._cache: dict[str, list[Window]] = {}

    def covering(self, metric_id: str, t: float) -> list[Window]:
        """The windows covering ``metric_id`` at ``t``."""
        cands = self._cache.get(metric_id)
        if cands is None:
            cands = self._cache[metric_id] = self._index.matches(metric_id)
        return [w for w in cands if w.start <= t < w.end] if cands else []


NO_DOWNTIME = WindowIndex(())


def strongest(windows: Sequence[Window]) -> Window | None:
    """The window that suppresses most: an ``outage`` before an ``at-risk``; earliest start first."""
    if not windows:
        return None
    return min(windows, key=lambda w: (w.severity != "outage", w.start, w.downtime_id))

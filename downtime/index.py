"""Which downtime windows cover a metric: the query behind alarm silencing and graph shading.

Scopes are globs over metric ids (``condor-cms/*``, ``fts/link.*FNAL*``, ``*/load``), matched by the one
glob index of rexmon (:class:`alarms.globs.GlobIndex`, which also resolves alarm rules).
"""

from __future__ import annotations

from collections.abc import Sequence

from alarms.globs import GlobIndex
from downtime.windows import Window


class DowntimeIndex:
    """An immutable index over a set of windows."""

    def __init__(self, windows: Sequence[Window]) -> None:
        self.windows = list(windows)
        self._index: GlobIndex[Window] = GlobIndex((w.scope, w) for w in self.windows)

    def covering(self, metric_id: str, t: float) -> list[Window]:
        """Windows whose scope matches ``metric_id`` and with ``start <= t < end``."""
        return [w for w in self._index.matches(metric_id) if w.start <= t < w.end]

    def overlapping(self, metric_id: str, t0: float, t1: float) -> list[Window]:
        """Windows whose scope matches ``metric_id`` and that overlap ``[t0, t1)``."""
        return [w for w in self._index.matches(metric_id) if w.start < t1 and w.end > t0]

    def matches(self, metric_id: str) -> bool:
        """Does any window's scope match ``metric_id`` (whatever its time)?"""
        return bool(self._index.positions(metric_id))

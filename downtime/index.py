"""Which downtime windows cover a metric: the query behind alarm silencing and graph shading.

Scopes are globs over metric ids (``condor-cms/*``, ``fts/link.*FNAL*``). Matching every metric against
every pattern is 10^8 regex calls at 1,000 downtimes x 100,000 metrics; instead patterns are grouped by
their literal prefix (the text before the first wildcard), so a metric is only tried against the patterns
whose prefix it starts with, and the answer is cached per metric id.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from collections.abc import Sequence

from downtime.windows import Window

_WILD = re.compile(r"[*?\[]")


def literal_prefix(pattern: str) -> str:
    m = _WILD.search(pattern)
    return pattern if m is None else pattern[: m.start()]


class DowntimeIndex:
    """An immutable index over a set of windows."""

    def __init__(self, windows: Sequence[Window]) -> None:
        self.windows = list(windows)
        # prefix length -> prefix -> [(compiled pattern or None for an exact id, window index)]
        self._by_prefix: dict[int, dict[str, list[tuple[re.Pattern[str] | None, int]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        compiled: dict[str, re.Pattern[str]] = {}
        for i, w in enumerate(self.windows):
            for pattern in w.scope:
                prefix = literal_prefix(pattern)
                rx = None
                if prefix != pattern:
                    rx = compiled.get(pattern)
                    if rx is None:
                        rx = compiled[pattern] = re.compile(fnmatch.translate(pattern))
                self._by_prefix[len(prefix)][prefix].append((rx, i))
        self._lengths = sorted(self._by_prefix)
        self._cache: dict[str, tuple[int, ...]] = {}

    def _matching(self, metric_id: str) -> tuple[int, ...]:
        hit = self._cache.get(metric_id)
        if hit is not None:
            return hit
        found: set[int] = set()
        n = len(metric_id)
        for length in self._lengths:
            if length > n:
                break
            entries = self._by_prefix[length].get(metric_id[:length])
            if not entries:
                continue
            for rx, i in entries:
                if i in found:
                    continue
                if rx is None:
                    if length == n:
                        found.add(i)
                elif rx.match(metric_id):
                    found.add(i)
        hit = tuple(sorted(found))
        self._cache[metric_id] = hit
        return hit

    def covering(self, metric_id: str, t: float) -> list[Window]:
        """Windows whose scope matches ``metric_id`` and with ``start <= t < end``."""
        ws = self.windows
        return [ws[i] for i in self._matching(metric_id) if ws[i].start <= t < ws[i].end]

    def overlapping(self, metric_id: str, t0: float, t1: float) -> list[Window]:
        """Windows whose scope matches ``metric_id`` and that overlap ``[t0, t1)``."""
        ws = self.windows
        return [ws[i] for i in self._matching(metric_id) if ws[i].start < t1 and ws[i].end > t0]

    def matches(self, metric_id: str) -> bool:
        """Does any window's scope match ``metric_id`` (whatever its time)?"""
        return bool(self._matching(metric_id))

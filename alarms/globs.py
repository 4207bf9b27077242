"""Match one metric id against many glob patterns fast: bucket patterns by their literal slurper part."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from fnmatch import translate
from typing import Generic, TypeVar

T = TypeVar("T")
_GLOB_CHARS = frozenset("*?[")


def _bucket(pattern: str) -> str | None:
    """The literal slurper part of a pattern ("a/*" -> "a"); None when it holds a wildcard."""
    head, slash, _ = pattern.partition("/")
    if not slash or _GLOB_CHARS & set(head):
        return None
    return head


class GlobIndex(Generic[T]):
    """Items with glob patterns; :meth:`matches` yields the items matching an id, in insertion order.

    A metric id is ``<slurper>/<metric>``: a pattern whose slurper part is literal is only tried on ids
    of that slurper, so 1,000 rules cost a handful of regex matches per metric rather than 1,000.
    """

    def __init__(self, items: Iterable[tuple[Sequence[str], T]]) -> None:
        self._by_slurper: dict[str, list[tuple[int, re.Pattern[str], T]]] = {}
        self._generic: list[tuple[int, re.Pattern[str], T]] = []
        for order, (patterns, item) in enumerate(items):
            buckets: dict[str | None, list[str]] = {}
            for p in patterns:
                buckets.setdefault(_bucket(p), []).append(p)
            for key, pats in buckets.items():
                rx = re.compile("|".join(f"(?:{translate(p)})" for p in pats))
                entry = (order, rx, item)
                if key is None:
                    self._generic.append(entry)
                else:
                    self._by_slurper.setdefault(key, []).append(entry)

    def matches(self, metric_id: str) -> list[T]:
        """Every item with a pattern matching ``metric_id`` (each once), in insertion order."""
        head = metric_id.partition("/")[0]
        candidates = self._by_slurper.get(head, [])
        if self._generic:
            candidates = sorted([*candidates, *self._generic], key=lambda e: e[0])
        out: list[T] = []
        last = -1
        for order, rx, item in candidates:
            if order != last and rx.match(metric_id):
                out.append(item)
                last = order
        return out

    def last_match(self, metric_id: str) -> T | None:
        """The last inserted item matching ``metric_id``, or None."""
        head = metric_id.partition("/")[0]
        best: tuple[int, T] | None = None
        for entries in (self._by_slurper.get(head, ()), self._generic):
            for order, rx, item in reversed(entries):
                if best is not None and order <= best[0]:
                    break
                if rx.match(metric_id):
                    best = (order, item)
                    break
        return None if best is None else best[1]

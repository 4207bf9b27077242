"""The one glob index of rexmon: which of many items (alarm rules, downtime windows) have a glob pattern
matching a metric id, without trying every pattern on every id.

Trying every metric against every pattern is 10^8 regex calls at 1,000 downtimes x 100,000 metrics. A
metric id has exactly one ``/``, so a pattern with one ``/`` splits into a slurper glob and a metric
glob: the slurper glob is resolved once per distinct slurper id (a few hundred), and the metric globs
that apply to a slurper are bucketed by their literal prefix, so a metric meets only the patterns whose
prefix it starts with. Patterns without exactly one ``/`` (``*``, ``condor*``) are matched against the
whole id the same way. Each distinct glob is compiled and tried once however many items share it (the
callers keep their own answers per metric: ``RuleSet`` for as long as the rules, the engine for a
round). Matching is ``fnmatch``'s, case-sensitive.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
_WILD = re.compile(r"[*?\[]")
Entry = tuple["re.Pattern[str] | None", tuple[int, ...]]  # (compiled glob or None if literal, items)


def literal_prefix(pattern: str) -> str:
    m = _WILD.search(pattern)
    return pattern if m is None else pattern[: m.start()]


class PrefixMatcher:
    """Globs bucketed by literal prefix: a string is only tried against globs whose prefix it starts with."""

    def __init__(self, globs: Iterable[tuple[str, int]], compiled: dict[str, re.Pattern[str]]) -> None:
        grouped: dict[str, list[int]] = defaultdict(list)
        for glob, i in globs:
            grouped[glob].append(i)
        self._by_len: dict[int, dict[str, list[Entry]]] = defaultdict(lambda: defaultdict(list))
        for glob, idxs in grouped.items():
            prefix = literal_prefix(glob)
            rx = None
            if prefix != glob:
                rx = compiled.get(glob)
                if rx is None:
                    rx = compiled[glob] = re.compile(fnmatch.translate(glob))
            self._by_len[len(prefix)][prefix].append((rx, tuple(idxs)))
        self._lengths = sorted(self._by_len)

    def matches(self, text: str, found: set[int]) -> None:
        n = len(text)
        by_len = self._by_len
        for length in self._lengths:
            if length > n:
                break
            entries = by_len[length].get(text[:length])
            if entries:
                for rx, idxs in entries:
                    if length == n if rx is None else rx.match(text):
                        found.update(idxs)


class GlobIndex(Generic[T]):
    """Items, each with glob patterns over metric ids; immutable once built."""

    def __init__(self, items: Iterable[tuple[Sequence[str], T]]) -> None:
        self.items: list[T] = []
        compiled: dict[str, re.Pattern[str]] = {}
        literal: dict[str, list[tuple[str, int]]] = defaultdict(list)  # slurper -> metric globs
        wild: dict[str, list[tuple[str, int]]] = defaultdict(list)  # slurper glob -> metric globs
        whole: list[tuple[str, int]] = []  # patterns without exactly one '/'
        for i, (patterns, item) in enumerate(items):
            self.items.append(item)
            for pattern in patterns:
                if pattern.count("/") != 1 or "[" in pattern:
                    whole.append((pattern, i))
                    continue
                sglob, mglob = pattern.split("/")
                (wild if _WILD.search(sglob) else literal)[sglob].append((mglob, i))
        self._literal = {k: PrefixMatcher(v, compiled) for k, v in literal.items()}
        self._wild = [(re.compile(fnmatch.translate(k)), PrefixMatcher(v, compiled)) for k, v in wild.items()]
        self._whole = PrefixMatcher(whole, compiled) if whole else None
        self._per_slurper: dict[str, tuple[PrefixMatcher, ...]] = {}

    def _slurper_matchers(self, slurper: str) -> tuple[PrefixMatcher, ...]:
        hit = self._per_slurper.get(slurper)
        if hit is None:
            found = [self._literal[slurper]] if slurper in self._literal else []
            found += [m for srx, m in self._wild if srx.match(slurper)]
            hit = self._per_slurper[slurper] = tuple(found)
        return hit

    def positions(self, metric_id: str) -> tuple[int, ...]:
        """The positions (in insertion order) of the items with a pattern matching ``metric_id``."""
        found: set[int] = set()
        slurper, slash, metric = metric_id.partition("/")
        if slash and "/" not in metric:
            matchers = self._per_slurper.get(slurper)
            if matchers is None:
                matchers = self._slurper_matchers(slurper)
            for matcher in matchers:
                matcher.matches(metric, found)
        if self._whole is not None:
            self._whole.matches(metric_id, found)
        return tuple(sorted(found)) if len(found) > 1 else tuple(found)

    def matches(self, metric_id: str) -> list[T]:
        """Every item with a pattern matching ``metric_id`` (each once), in insertion order."""
        return [self.items[i] for i in self.positions(metric_id)]

    def last_match(self, metric_id: str) -> T | None:
        """The last inserted item matching ``metric_id``, or None."""
        hit = self.positions(metric_id)
        return self.items[hit[-1]] if hit else None

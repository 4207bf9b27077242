"""The newest archived value of each metric, cached per file until the file changes.

Reading 10,000 files' last update one by one costs a second; an RRD file changes only when it is
updated, so each reading is kept with the file's (mtime, size) and re-read only when those change. Reads
go through the archive's reader (:class:`rrd.reader.ArchiveReader`, the web never writes); with rrdcached
the files asked for are flushed once per request first, so a pending value reaches the file (and changes
its mtime) before the look. The overview asks only for the metrics it shows with values (problems, open
groups), never for every file.

Counters (COUNTER, DERIVE, ABSOLUTE) are shown as the rate rrdtool archived: the last consolidated
AVERAGE per second, with the raw counter kept for a tooltip.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rrd.archive import DS_NAME, ArchiveError
from rrd.reader import ArchiveReader

log = logging.getLogger(__name__)
RATE_TYPES = frozenset({"COUNTER", "DERIVE", "ABSOLUTE"})
#: how many steps back to look for the last complete rate
RATE_STEPS = 5


@dataclass(frozen=True)
class Latest:
    """A metric's last update: ``value`` is what a page shows (the rate per second for counters)."""

    time: int
    value: float | None
    raw: float | None = None
    ds_type: str = "GAUGE"

    @property
    def is_rate(self) -> bool:
        return self.ds_type in RATE_TYPES

    @property
    def unit(self) -> str:
        return "/s" if self.is_rate else ""


class LatestCache:
    """Last values of an archive's metrics, re-read only for files that changed."""

    def __init__(self, archive: ArchiveReader) -> None:
        self.archive = archive
        self._types: dict[str, str] = {}  # a file's DS type never changes
        self._hits: dict[str, tuple[tuple[int, int], Latest]] = {}
        self._paths: dict[str, str] = {}

    def get(self, metric_id: str) -> Latest | None:
        return self.get_many([metric_id]).get(metric_id)

    def get_many(self, metric_ids: Sequence[str]) -> dict[str, Latest]:
        """The latest reading of each metric that has a readable file."""
        self.archive.flush_many(metric_ids)
        out: dict[str, Latest] = {}
        hits, paths = self._hits, self._paths
        for mid in metric_ids:
            path = paths.get(mid)
            if path is None:
                path = paths[mid] = str(self.archive.path(mid))
            try:
                st = os.stat(path)
            except OSError:
                hits.pop(mid, None)
                continue
            key = (st.st_mtime_ns, st.st_size)
            hit = hits.get(mid)
            if hit is not None and hit[0] == key:
                out[mid] = hit[1]
                continue
            try:
                latest = self._read(mid)
            except ArchiveError as exc:
                log.warning("%s", exc)
                continue
            if latest is not None:
                hits[mid] = (key, latest)
                out[mid] = latest
        return out

    def ds_type(self, metric_id: str) -> str:
        known = self._types.get(metric_id)
        if known is None:
            known = str(self.archive.info(metric_id).get(f"ds[{DS_NAME}].type", "GAUGE"))
            self._types[metric_id] = known
        return known

    def _read(self, metric_id: str) -> Latest | None:
        last = self.archive.last(metric_id, flush=False)
        if last is None:
            return None
        t, raw = last
        ds_type = self.ds_type(metric_id)
        if ds_type not in RATE_TYPES:
            return Latest(t, raw, raw, ds_type)
        return Latest(t, self._rate(metric_id, t), raw, ds_type)

    def _rate(self, metric_id: str, t: int) -> float | None:
        """The newest consolidated AVERAGE rate at or before ``t`` (None while only one value is in)."""
        step = self.archive.step
        series = self.archive.fetch(metric_id, t - RATE_STEPS * step, t, "AVERAGE")
        return next((float(v) for v in reversed(series.values) if v is not None), None)


class MetricIds:
    """The archive's metric ids, each slurper directory re-listed only when its mtime changes."""

    def __init__(self, rrd_dir: Path) -> None:
        self.rrd_dir = Path(rrd_dir)
        self._dirs: dict[str, tuple[int, list[str]]] = {}
        self._all: list[str] = []

    def __call__(self) -> list[str]:
        """Every id, sorted; the same list object while no directory changed (callers key caches on it)."""
        if not self.rrd_dir.is_dir():
            return []
        seen: dict[str, tuple[int, list[str]]] = {}
        changed = False
        for entry in os.scandir(self.rrd_dir):
            if not entry.is_dir():
                continue
            mtime = entry.stat().st_mtime_ns  # adding or removing a file changes its directory's mtime
            hit = self._dirs.get(entry.name)
            if hit is None or hit[0] != mtime:
                hit = (mtime, _list_dir(entry.name, entry.path))
                changed = True
            seen[entry.name] = hit
        if changed or seen.keys() != self._dirs.keys():
            self._all = sorted(m for _, ids in seen.values() for m in ids)
        self._dirs = seen
        return self._all


def _list_dir(name: str, path: str) -> list[str]:
    """The ids of one slurper directory's files, as ``Archive.metric_ids`` names them."""
    return [f"{name}/{f.name[:-4]}" for f in os.scandir(path) if f.name.endswith(".rrd") and f.is_file()]

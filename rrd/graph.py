"""Server-side graphs with ``rrdtool graph``: drawn in single-threaded child processes, cached on disk.

What rrdtool is told (the spec, its checks and the argument list) is :mod:`rrd.graphargs`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import rrdtool

from rrd.archive import DS_NAME, Archive, ArchiveError
from rrd.graphargs import CONTENT_TYPES, GraphError, GraphSpec, build_args, check_zone, iec_exponent, path_arg
from rrd.spec import MetricNotFound

log = logging.getLogger(__name__)

_CACHE_MAX_AGE = 86400
#: librrd's graph code is not thread-safe (its Pango font map and fontconfig are process-wide): two
#: ``graphv`` calls at once in one process crash it (SIGSEGV, or an fcmatch.c assertion), and it takes
#: the time zone of its axis from the process-wide ``TZ``. So graphs are drawn in single-threaded child
#: processes (:class:`Drawer`), each setting ``TZ`` for the graph it draws; a crash there is one failed
#: image, not a dead web server. fetch, info and last stay in the server process.
_GRAPH_LOCK = threading.Lock()


@dataclass
class Rendered:
    """An image with its geometry (``graph_left``, ``graph_width``, ``graph_start``... from graphv)."""

    data: bytes
    content_type: str
    info: dict[str, float | str] = field(default_factory=dict)
    cached: bool = False


class GraphRenderer:
    """Draws graphs from an :class:`Archive`, caching images on disk under ``cache_dir``."""

    def __init__(
        self, archive: Archive, cache_dir: Path | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.archive = archive
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.clock = clock
        self._writes = 0

    def render(self, spec: GraphSpec, *, use_cache: bool = True) -> Rendered:
        """Draw ``spec``; a cached image is reused while no metric has new data. MetricNotFound (an
        ArchiveError) for an id the archive does not hold, GraphError for anything else."""
        paths, stamps = self._locate(spec.metric_ids)
        cache = self._cache_path(spec, stamps) if use_cache else None
        if cache is not None and cache.is_file():
            return Rendered(cache.read_bytes(), CONTENT_TYPES[spec.fmt], cached=True)
        # through rrdcached (FETCH) when it answers: librrd's read lock would make its writes fail
        args = [*self.archive.daemon_args(), *build_args(spec, paths, self._iec(spec, paths))]
        try:
            data, info = DRAWER.draw(spec.zone, args)
        except GraphError as exc:
            raise GraphError(f"rrdtool graph failed for {', '.join(spec.metric_ids)}: {exc}") from exc
        if cache is not None:
            self._store(cache, data)
        return Rendered(data, CONTENT_TYPES[spec.fmt], info)

    def _iec(self, spec: GraphSpec, paths: Sequence[Path]) -> int | None:
        """For a unit with IEC prefixes: the power of 1024 of the largest value drawn in range (None: SI)."""
        if spec.base != 1024 or not spec.unit:
            return None
        has_cdef = [i < len(spec.cdefs) and bool(spec.cdefs[i]) for i in range(len(spec.metric_ids))]
        peak = self._cdef_peak(spec, paths) if any(has_cdef) else 0.0
        for mid, transformed in zip(spec.metric_ids, has_cdef, strict=True):
            if transformed:
                continue
            try:
                series = self.archive.fetch(mid, spec.start, spec.end)
            except ArchiveError as exc:
                raise GraphError(str(exc)) from exc
            peak = max([peak, *(abs(v) for v in series.values if v is not None)])
        return iec_exponent(peak * spec.scale)

    def _cdef_peak(self, spec: GraphSpec, paths: Sequence[Path]) -> float:
        """The largest magnitude of the lines with a cdef, computed by rrdtool (``xport``: no image)."""
        args = [*self.archive.daemon_args(), "--start", str(spec.start), "--end", str(spec.end)]
        for i, path in enumerate(paths):
            args.append(f"DEF:v{i}={path_arg(path)}:{DS_NAME}:AVERAGE")
        for i, expr in enumerate(spec.cdefs):
            if expr:
                args += [f"CDEF:c{i}={expr}", f"XPORT:c{i}"]
        try:
            out = rrdtool.xport(*args)
        except rrdtool.OperationalError as exc:
            raise GraphError(f"rrdtool xport failed for {', '.join(spec.metric_ids)}: {exc}") from None
        values = (abs(v) for row in out["data"] for v in row if v is not None and math.isfinite(v))
        return max(values, default=0.0)

    def _locate(self, metric_ids: Sequence[str]) -> tuple[list[Path], list[int]]:
        paths, stamps = [], []
        for mid in metric_ids:
            try:
                last = self.archive.last(mid)  # flushes rrdcached, so the graph sees every value
            except MetricNotFound:
                raise
            except ArchiveError as exc:
                raise GraphError(str(exc)) from exc
            if last is None:
                raise MetricNotFound(f"no such metric: {mid}")
            paths.append(self.archive.graph_source(mid))
            stamps.append(last[0])
        return paths, stamps

    def _cache_path(self, spec: GraphSpec, stamps: Sequence[int]) -> Path | None:
        if self.cache_dir is None:
            return None
        key = repr((spec, tuple(stamps))).encode()
        name = hashlib.sha256(key).hexdigest()[:40] + "." + spec.fmt.lower()
        return self.cache_dir / name[:2] / name

    def _store(self, path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError as exc:  # a full or read-only cache must not break the page
            log.warning("cannot cache graph %s: %s", path, exc)
            return
        self._writes += 1
        if self._writes % 500 == 0:
            self.prune(self.clock() - _CACHE_MAX_AGE)

    def prune(self, older_than: float) -> int:
        """Delete cached images last written before ``older_than`` (epoch seconds)."""
        if self.cache_dir is None or not self.cache_dir.is_dir():
            return 0
        removed = 0
        for f in self.cache_dir.glob("*/*.*"):
            try:
                if f.stat().st_mtime < older_than:
                    f.unlink()
                    removed += 1
            except OSError:
                continue
        return removed


def _draw_in_child(zone: str, args: Sequence[str]) -> tuple[bytes, dict[str, float | str]]:
    """In a drawing process (one thread): set the axis zone, draw, return the image and graphv's info."""
    if os.environ.get("TZ") != zone:
        os.environ["TZ"] = zone
        time.tzset()
    try:
        result = rrdtool.graphv("-", *args)
    except rrdtool.OperationalError as exc:
        raise GraphError(str(exc)) from None
    data = bytes(result.pop("image"))
    return data, {k: (v if isinstance(v, str) else float(v)) for k, v in result.items()}


def _die_with_parent() -> None:
    """A drawing process's start: a thread that ends the process once the one that started it is gone.
    A web server stopped by SIGTERM (or killed) never shuts its pool down, and its drawing processes
    lived on, each with its resource tracker. The thread only waits; it never draws."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="rexmon-parent-watch", daemon=True).start()


class Drawer:
    """A pool of child processes that run ``rrdtool.graphv`` in one thread each, started on first use.

    A child that dies (librrd crashed) breaks the pool: that graph fails with a GraphError and the next
    one starts a new pool.
    """

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def draw(self, zone: str, args: Sequence[str]) -> tuple[bytes, dict[str, float | str]]:
        pool = self._get()
        try:
            return pool.submit(_draw_in_child, check_zone(zone), list(args)).result()
        except BrokenProcessPool:
            with _GRAPH_LOCK:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False)
            raise GraphError("the drawing process died (librrd crashed); try again") from None

    def _get(self) -> ProcessPoolExecutor:
        with _GRAPH_LOCK:
            if self._pool is None:
                # spawn, not fork: a forked copy of the threaded web server could inherit a held lock
                ctx = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_die_with_parent)
            return self._pool

    def close(self) -> None:
        """Stop the drawing processes (a later draw starts new ones)."""
        with _GRAPH_LOCK:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


#: the process's drawing pool
DRAWER = Drawer(min(2, os.cpu_count() or 1))

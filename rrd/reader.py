"""Reading the archive: metric ids, last values, fetches and file info.

With rrdcached configured every read goes through it (``INFO`` after a ``FLUSH``, ``FETCH``, which
flushes the file itself), so no reader ever holds the file lock that librrd's readers take: when
rrdcached writes a file while another process holds that lock, its update fails and it drops the
pending values (rrdtool 1.7). rrdcached's own reads share its process, so they never collide with its
writes. Without rrdcached, or (web site, ``flush_errors="warn"``) while rrdcached does not answer, the
files are read directly with librrd. Over TCP on a host without the files (a collector host) the list
of ids comes from rrdcached too (:mod:`rrd.remote`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import rrdtool

from rrd import header, remote
from rrd.flush import FlushErrors, FlushPolicy
from rrd.names import Names, id_from_path
from rrd.rrdcached import RRDCachedClient, RRDCachedError
from rrd.spec import CFS, DS_NAME, ArchiveError, MetricNotFound, Series

log = logging.getLogger(__name__)


def has_slurper_dirs(rrd_dir: Path) -> bool:
    """Whether ``rrd_dir`` holds a slurper's folder (``.journal`` and other dot-folders do not count)."""
    try:
        with os.scandir(rrd_dir) as entries:
            return any(e.is_dir() and not e.name.startswith(".") for e in entries)
    except OSError:
        return False


class ArchiveReader:
    """Reads one archive under ``rrd_dir``; through rrdcached when it is configured.

    The reader has its own rrdcached connection, so reads never wait for a writer's BATCH.
    """

    def __init__(
        self,
        names: Names,
        step: int,
        rrdcached: str = "",
        *,
        flush_errors: FlushErrors = "raise",
        monotonic: Callable[[], float] = time.monotonic,
        timeout: float = 30.0,
    ) -> None:
        #: the archive's files (``names.rrd_dir``) and how rrdcached names them (``names.remote``: over TCP)
        self.names = names
        self.rrd_dir = names.rrd_dir
        self._tcp = names.remote
        self.step = int(step)
        self.rrdcached = rrdcached
        self.client = RRDCachedClient(rrdcached, timeout) if rrdcached else None
        self.policy = FlushPolicy(self.client, flush_errors, monotonic)
        self._reads_remote: bool | None = None

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    @property
    def flush_error(self) -> str | None:
        """Why rrdcached did not answer the last flush ("warn" readers), until it answers again."""
        return self.policy.error

    @property
    def reads_remote(self) -> bool:
        """rrdcached over TCP and no slurper's folder under ``rrd_dir`` here (a collector host): the
        list of ids comes through rrdcached too. Decided at the first read."""
        if self._reads_remote is None:
            self._reads_remote = self._tcp and not has_slurper_dirs(self.rrd_dir)
        return self._reads_remote

    def path(self, metric_id: str) -> Path:
        return self.names.path(metric_id)

    def daemon_args(self) -> list[str]:
        """``rrdtool graph`` arguments that make it read through rrdcached (empty without one, or while
        a "warn" reader reads the disk): graphs then never lock a file rrdcached writes."""
        if self.client is None or self.policy.paused():
            return []
        return ["--daemon", self.rrdcached]

    def graph_source(self, metric_id: str) -> Path:
        """The file name a ``DEF:`` gives with :meth:`daemon_args` (relative to ``-b`` over TCP)."""
        if self.daemon_args():
            return Path(self.names.name(metric_id))
        return self.names.path(metric_id)

    # -- the read-side flush ---------------------------------------------------------------------
    def flush(self, metric_id: str | None = None) -> None:
        """Make pending rrdcached updates of one metric visible in its file."""
        if metric_id is not None:
            self.flush_many([metric_id])

    def flush_many(self, metric_ids: Sequence[str]) -> bool:
        """Flush these metrics' files; False when a "warn" reader is to read the disk instead."""
        try:
            return self.policy.flush([self.names.name(m) for m in metric_ids], remote=self.reads_remote)
        except ArchiveError as exc:
            if len(metric_ids) == 1:  # name the metric, as every other read error does
                raise ArchiveError(f"{metric_ids[0]}: {exc}") from exc.__cause__
            raise

    def _daemon(self, flushed: bool) -> RRDCachedClient | None:
        """The connection to read through, or None to read the local files."""
        if self.client is None:
            return None
        if not flushed and not self.reads_remote:
            return None  # rrdcached does not answer ("warn"): the files on disk, as they are
        return self.client

    def _remote(self, client: RRDCachedClient, what: Any, metric_id: str, *args: Any) -> Any:
        """``what(client, name, *args)`` for one metric; errors name the metric."""
        try:
            return what(client, self.names.name(metric_id), *args)
        except (remote.RemoteReadError, RRDCachedError) as exc:
            raise ArchiveError(f"{metric_id}: {exc}") from exc

    # -- reads -----------------------------------------------------------------------------------
    def exists(self, metric_id: str) -> bool:
        if self.reads_remote:
            assert self.client is not None
            return self._remote(self.client, remote.info, metric_id) is not None
        return self.path(metric_id).is_file()

    def metric_ids(self) -> list[str]:
        """Every metric id with a file in the archive, sorted."""
        if self.reads_remote:
            assert self.client is not None
            try:
                return remote.list_ids(self.client)
            except (remote.RemoteReadError, RRDCachedError) as exc:
                raise ArchiveError(str(exc)) from exc
        if not self.rrd_dir.is_dir():
            return []
        out = []
        for entry in os.scandir(self.rrd_dir):
            if not entry.is_dir():
                continue
            for f in os.scandir(entry.path):
                if f.name.endswith(".rrd") and f.is_file():
                    out.append(id_from_path(self.rrd_dir, Path(f.path)))
        return sorted(out)

    def last(self, metric_id: str, *, flush: bool = True) -> tuple[int, float | None] | None:
        """(time, value) of the last update, or None when the metric has no file.

        ``flush=False``: the caller flushed already (:meth:`last_many`, the web's latest values).
        """
        if not self.reads_remote and not self.path(metric_id).is_file():
            return None
        flushed = self.flush_many([metric_id]) if flush else self.policy.error is None
        client = self._daemon(flushed)
        if client is not None and not self.reads_remote:
            # the files are here: their header, read without a lock (librrd's would collide with
            # rrdcached's writes), after the flush; rrdcached's INFO when it cannot be read that way
            got_local = header.last(self.path(metric_id))
            if got_local is not None:
                return got_local
        if client is not None:
            got: tuple[int, float | None] | None = self._remote(client, remote.last, metric_id, DS_NAME)
            return got
        path = self.path(metric_id)
        try:
            info = rrdtool.lastupdate(str(path))
        except rrdtool.OperationalError as exc:
            raise ArchiveError(f"{metric_id}: cannot read {path}: {exc}") from exc
        value = info["ds"].get(DS_NAME)
        return int(info["date"].timestamp()), (None if value is None else float(value))

    def last_many(self, metric_ids: Sequence[str]) -> dict[str, tuple[int, float | None]]:
        """The last update of each metric that has a readable file (others are logged and left out)."""
        self.flush_many(metric_ids)
        out = {}
        for mid in metric_ids:
            try:
                got = self.last(mid, flush=False)
            except ArchiveError as exc:
                log.warning("%s", exc)
                continue
            if got is not None:
                out[mid] = got
        return out

    def fetch(
        self, metric_id: str, start: int, end: int, cf: str = "AVERAGE", resolution: int | None = None
    ) -> Series:
        """Consolidated values between ``start`` and ``end`` (rrdcached's FETCH flushes the file)."""
        if cf not in CFS:
            raise ArchiveError(f"consolidation function {cf!r} is not one of {', '.join(CFS)}")
        if not self.reads_remote and not self.path(metric_id).is_file():
            raise MetricNotFound(f"no such metric: {metric_id}")
        client = self._daemon(not self.policy.paused())
        if client is not None and (not resolution or self.reads_remote):
            try:
                got = remote.fetch(client, self.names.name(metric_id), cf, start, end)
            except remote.RemoteReadError as exc:
                raise ArchiveError(f"{metric_id}: {exc}") from exc
            except RRDCachedError as exc:  # rrdcached went away: as a failed flush ("warn": the disk)
                self.policy.failed(exc, remote=self.reads_remote)
                return self._fetch_file(self.path(metric_id), metric_id, start, end, cf, resolution)
            if got is None:
                raise MetricNotFound(f"no such metric: {metric_id}")
            t0, t1, step, values = got
            return Series(metric_id, t0, t1, step, cf, values)
        if client is None:
            return self._fetch_file(self.path(metric_id), metric_id, start, end, cf, resolution)
        # FETCH over the socket takes no resolution: flush, then read a copy (librrd would lock the file)
        self.flush_many([metric_id])
        with self.snapshot(metric_id) as copy:
            return self._fetch_file(copy, metric_id, start, end, cf, resolution)

    @contextlib.contextmanager
    def snapshot(self, metric_id: str) -> Iterator[Path]:
        """A private copy of the metric's file, read without a lock, for librrd to read at leisure.

        A copy taken while rrdcached writes may mix one update's rows with the next one's header; for a
        picture or a coarse fetch that is harmless, and rrdcached's write never fails because of it.
        """
        path = self.path(metric_id)
        with tempfile.TemporaryDirectory(prefix="rexmon-rrd-") as tmp:
            copy = Path(tmp) / path.name
            try:
                shutil.copyfile(path, copy)
            except OSError as exc:
                raise ArchiveError(f"{metric_id}: cannot read {path}: {exc.strerror}") from exc
            yield copy

    def _fetch_file(
        self, path: Path, metric_id: str, start: int, end: int, cf: str, resolution: int | None
    ) -> Series:
        args = [str(path), cf, "-s", str(int(start)), "-e", str(int(end))]
        if resolution:
            args += ["-r", str(int(resolution))]
        try:
            (t0, t1, step), _names, rows = rrdtool.fetch(*args)
        except rrdtool.OperationalError as exc:
            raise ArchiveError(f"{metric_id}: fetch failed: {exc}") from exc
        return Series(metric_id, int(t0), int(t1), int(step), cf, [r[0] for r in rows])

    def info(self, metric_id: str) -> dict[str, object]:
        """``rrdtool info`` of the metric's file (after a flush)."""
        if not self.reads_remote and not self.path(metric_id).is_file():
            raise MetricNotFound(f"no such metric: {metric_id}")
        client = self._daemon(self.flush_many([metric_id]))
        if client is not None:
            got: dict[str, object] | None = self._remote(client, remote.info, metric_id)
            if got is None:
                raise MetricNotFound(f"no such metric: {metric_id}")
            return got
        path = self.path(metric_id)
        try:
            return dict(rrdtool.info(str(path)))
        except rrdtool.OperationalError as exc:
            raise ArchiveError(f"{metric_id}: {exc}") from exc

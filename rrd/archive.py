"""The RRD archive: create files on first sight, batched updates (directly or through rrdcached), reads.

This package is the only one that imports rrdtool. It knows metric ids and series specs, never slurpers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import rrdtool

from rrd import remote
from rrd.journal import JournalError, UpdateJournal, read_lines
from rrd.names import id_from_path, path_for, relpath
from rrd.rrdcached import BatchStream, RRDCachedClient, RRDCachedError

log = logging.getLogger(__name__)

DSType = Literal["GAUGE", "COUNTER", "DERIVE", "ABSOLUTE"]
DS_NAME = "value"
CFS = ("AVERAGE", "MIN", "MAX")
DAY = 86400
#: lines per part of a streamed BATCH (see Archive.write)
CHUNK = 1024
#: with flush_errors="warn": after a failed flush, reads skip flushing for this long (a dead TCP peer
#: would otherwise hold every page for the connect timeout)
FLUSH_RETRY_SECONDS = 10.0


class ArchiveError(Exception):
    """The archive could not be read or written; the message names the metric and the cause."""


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """What the archive needs to create a file: the DS type, its bounds and heartbeat."""

    ds_type: DSType = "GAUGE"
    heartbeat: int = 120
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class Update:
    metric_id: str
    time: int
    value: float | None
    spec: SeriesSpec = SeriesSpec()


@dataclass
class WriteResult:
    written: int = 0
    #: older than (or at) the file's last update: skipped, never an error
    skipped_old: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    created: int = 0


@dataclass(frozen=True)
class Series:
    metric_id: str
    start: int
    end: int
    step: int
    cf: str
    values: list[float | None]

    def points(self) -> list[tuple[int, float | None]]:
        """(time, value) pairs; like ``rrdtool fetch``, a row is labelled by the END of its interval."""
        return [(self.start + (i + 1) * self.step, v) for i, v in enumerate(self.values)]


def rra_args(step: int) -> list[str]:
    """1 step for 2 days, 5 steps for 2 weeks, 60 steps for 2 months, 1440 steps for 2 years."""
    plan = [(1, 2 * DAY), (5, 14 * DAY), (60, 62 * DAY), (1440, 730 * DAY)]
    out = []
    for cf in CFS:
        for steps, span in plan:
            rows = max(1, span // (steps * step))
            out.append(f"RRA:{cf}:0.5:{steps}:{rows}")
    return out


def ds_arg(spec: SeriesSpec) -> str:
    lo = "U" if spec.min is None else _num(spec.min)
    hi = "U" if spec.max is None else _num(spec.max)
    return f"DS:{DS_NAME}:{spec.ds_type}:{int(spec.heartbeat)}:{lo}:{hi}"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _has_slurper_dirs(rrd_dir: Path) -> bool:
    """Whether ``rrd_dir`` holds a slurper's folder (``.journal`` and other dot-folders do not count)."""
    try:
        with os.scandir(rrd_dir) as entries:
            return any(e.is_dir() and not e.name.startswith(".") for e in entries)
    except OSError:
        return False


def _rrd_readable(path: Path) -> bool:
    try:
        rrdtool.info(str(path))
    except rrdtool.OperationalError:
        return False
    return True


def _cause(exc: Exception | None, directory: Path) -> str:
    """rrdtool's message, or (it gives none on ENOSPC) what the file system says."""
    text = str(exc).strip() if exc is not None else ""
    try:
        st = os.statvfs(directory)
    except OSError as err:
        return text or f"{err.strerror}"
    free = st.f_bavail * st.f_frsize
    if free < 1 << 20:
        return f"No space left on device ({free // 1024} KiB free in {directory})" + (
            f"; {text}" if text else ""
        )
    return text or "rrdtool gave no reason"


class Archive:
    """One RRD archive under ``rrd_dir``, optionally fronted by rrdcached.

    With ``rrdcached`` set, every write goes through it (creation with CREATE, updates with BATCH) and
    every read flushes the file first. Over a unix socket files are named by absolute path; over TCP by
    their path relative to ``rrd_dir``, which must be rrdcached's ``-b`` base directory.
    """

    def __init__(
        self,
        rrd_dir: Path,
        step: int = 60,
        rrdcached: str = "",
        *,
        journal_dir: Path | None = None,
        journal_limit: int = 16 << 20,
        flush_errors: Literal["raise", "warn"] = "raise",
        monotonic: Callable[[], float] = time.monotonic,
        timeout: float = 30.0,
    ) -> None:
        self.rrd_dir = Path(rrd_dir)
        self.step = int(step)
        self.rrdcached = rrdcached
        self._client = RRDCachedClient(rrdcached, timeout) if rrdcached else None
        #: CREATE and LAST of files first seen while a streamed BATCH holds ``_client`` (second connection)
        self._control = RRDCachedClient(rrdcached, timeout) if rrdcached else None
        #: with rrdcached: rexmon's write-ahead log of updates (opened by the first write only)
        self.journal_dir = Path(journal_dir) if journal_dir else self.rrd_dir / ".journal"
        self.journal_limit = journal_limit
        self._journal: UpdateJournal | None = None
        self._dirty: set[str] = set()
        self._in_flight = 0
        self._remote = bool(rrdcached) and not rrdcached.startswith("unix:")
        self._reads_remote: bool | None = None
        #: "warn" (the web site): a reader whose flush fails reads the files as they are on disk, says so
        #: once in the log and keeps the reason in ``flush_error`` until a flush succeeds again
        self._flush_errors = flush_errors
        self.flush_error: str | None = None
        self._monotonic = monotonic
        self._flush_retry_at = 0.0
        if any(c in str(self.rrd_dir) for c in "\n\r"):
            raise ArchiveError(f"rrd_dir {str(self.rrd_dir)!r} contains a line break")
        #: per metric written by this process: [last update time, "UPDATE <file> " prefix, is GAUGE]
        self._meta: dict[str, list[Any]] = {}
        self._names: dict[str, tuple[Path, str]] = {}
        #: per metric: "UPDATE <name> " for rrdcached, "" when writing files directly
        self._prefix: dict[str, str] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Release the connection; a writer first has rrdcached write its files and drops its journal."""
        with self._lock:
            if self._journal is not None:
                synced = self._sync_locked()
                self._journal.close(remove=synced)
                self._journal = None
        if self._client is not None:
            self._client.close()
        if self._control is not None:
            self._control.close()

    # -- the write-ahead journal (rrdcached only) ------------------------------------------------------
    def _open_journal(self) -> UpdateJournal:
        """Open this process' journal and replay journals left by writers that died."""
        assert self._client is not None
        journal = UpdateJournal(self.journal_dir)
        for orphan in journal.orphans():
            lines = read_lines(orphan)
            if lines:
                self._client.batch(lines, trusted=True)
                self._client.flush_many(sorted({ln.split(" ", 2)[1] for ln in lines}))
                log.warning(
                    "replayed %d update(s) from %s, left by a writer that stopped", len(lines), orphan
                )
            orphan.unlink(missing_ok=True)
        self._client.replay = self._replay_lines
        return journal

    def _replay_lines(self) -> list[str]:
        """What rrdcached may have lost: the journal, less the batch being sent right now."""
        if self._journal is None:
            return []
        lines = self._journal.lines()
        return lines[: len(lines) - self._in_flight]

    def sync(self) -> bool:
        """Have rrdcached write every file updated since the last sync, then empty the journal."""
        with self._lock:
            return self._sync_locked()

    def _sync_locked(self) -> bool:
        if self._journal is None or self._client is None:
            return True
        try:
            self._client.flush_many([self._names[m][1] for m in sorted(self._dirty)])
        except RRDCachedError as exc:
            log.warning("journal kept: %s", exc)
            return False
        self._journal.truncate()
        self._dirty.clear()
        return True

    # -- names -----------------------------------------------------------------------------------
    def path(self, metric_id: str) -> Path:
        return self._name(metric_id)[0]

    def _name(self, metric_id: str) -> tuple[Path, str]:
        """(local path, name given to rrdcached) for a metric id; cached, ids repeat every round."""
        hit = self._names.get(metric_id)
        if hit is None:
            path = path_for(self.rrd_dir, metric_id)
            hit = (path, relpath(metric_id) if self._remote else str(path))
            self._names[metric_id] = hit
            self._prefix[metric_id] = f"UPDATE {hit[1]} " if self._client is not None else ""
        return hit

    # -- writing ---------------------------------------------------------------------------------
    def write(self, updates: Iterable[Update]) -> WriteResult:
        """Archive a batch. Old updates are skipped and counted; a bad file fails alone.

        Updates of one metric must come oldest first (the service sorts each slurper's readings);
        an update not newer than the metric's last one is skipped as old. This is the hot path
        (10,000s of values per second): one pass, file names and last-update times cached. Through
        rrdcached the batch is formatted, journaled and sent in parts of ``CHUNK`` lines, so rrdcached
        applies one part while the next is formatted.
        """
        result = WriteResult()
        failed: set[str] = set()
        with self._lock:
            if self._client is None:
                mids, lines = self._format(updates, result, failed)
                self._update_files(mids, lines, result)
            else:
                self._write_cached(updates, result, failed)
        return result

    def _format(
        self, updates: Iterable[Update], result: WriteResult, failed: set[str]
    ) -> tuple[list[str], list[str]]:
        """(metric ids, lines) of the updates to write: "UPDATE <file> <ts>:<value>" or "<ts>:<value>"."""
        get = self._meta.get
        mids: list[str] = []
        lines: list[str] = []
        skipped = 0
        prev_t, tcolon = -1, ""
        add_mid, add_line = mids.append, lines.append
        for u in updates:
            mid = u.metric_id
            m = get(mid)
            if m is None:
                m = None if mid in failed else self._first_sight(mid, u, result)
                if m is None:
                    failed.add(mid)
                    continue
            t = u.time
            if t <= m[0]:
                skipped += 1
                continue
            m[0] = t
            if t != prev_t:  # a batch mostly shares one timestamp: format it once
                prev_t, tcolon = t, f"{t}:"
            v = u.value
            # v - v is non-zero only for NaN and +-inf: both are unknown to rrdtool
            if v is None or v - v:
                text = "U"
            elif m[2]:
                text = repr(v)
            else:
                text = str(int(v))  # librrd takes only integers for COUNTER/DERIVE/ABSOLUTE
            add_mid(mid)
            add_line(m[1] + tcolon + text)
        result.skipped_old += skipped
        return mids, lines

    def _write_cached(self, updates: Iterable[Update], result: WriteResult, failed: set[str]) -> None:
        """Format, journal and send part by part; nothing is sent that is not journaled first."""
        assert self._client is not None
        items = updates if isinstance(updates, list) else list(updates)
        sent: list[str] = []  # metric id of every line sent, in order: rrdcached numbers its errors
        stream = self._client.stream()
        journal_error: Exception | None = None
        try:
            for i in range(0, len(items), CHUNK):
                mids, lines = self._format(items[i : i + CHUNK], result, failed)
                if not lines:
                    continue
                if journal_error is None:
                    data = ("\n".join(lines) + "\n").encode()  # once, for the journal and the BATCH
                    try:
                        if self._journal is None:
                            self._journal = self._open_journal()
                        self._journal.append(data)
                    except (OSError, JournalError, RRDCachedError) as exc:
                        journal_error = exc
                if journal_error is not None:
                    # not sent: forget the cached last-times so that a retry is not skipped as old
                    for mid in mids:
                        self._meta.pop(mid, None)
                    msg = f"not written, journal failed: {journal_error}"
                    result.errors.extend((mid, msg) for mid in dict.fromkeys(mids))
                    continue
                self._dirty.update(mids)
                self._in_flight += len(lines)
                sent += mids
                stream.send(data, len(lines))
            if sent:
                self._finish(stream, sent, result)
        finally:
            stream.close()
            self._in_flight = 0
        if self._journal is not None and self._journal.size > self.journal_limit:
            self._sync_locked()

    def _finish(self, stream: BatchStream, mids: list[str], result: WriteResult) -> None:
        try:
            reply = stream.finish()
        except RRDCachedError as exc:
            # nothing of this batch is known to be written; forget cached last-times so a retry works
            for mid in set(mids):
                self._meta.pop(mid, None)
            result.errors.extend((mid, str(exc)) for mid in dict.fromkeys(mids))
            return
        failed = 0
        for idx, msg in reply.errors:
            mid = mids[idx] if 0 <= idx < len(mids) else "?"
            failed += 1
            if "illegal attempt to update" in msg or "minimum one second step" in msg:
                result.skipped_old += 1
            else:
                result.errors.append((mid, msg))
                self._meta.pop(mid, None)
        result.written += len(mids) - failed

    def _first_sight(self, mid: str, first: Update, result: WriteResult) -> list[Any] | None:
        """The metric's cached record [last update, line prefix, is GAUGE]; None if its file failed."""
        try:
            last = self._ensure(mid, first, result)
        except (ArchiveError, RRDCachedError, OSError) as exc:
            result.errors.append((mid, str(exc)))
            return None
        record: list[Any] = [last, self._prefix[mid], first.spec.ds_type == "GAUGE"]
        self._meta[mid] = record
        return record

    def _ensure(self, metric_id: str, first: Update, result: WriteResult) -> int:
        """Create the file if needed; return its last update time (cached after the first look)."""
        path, name = self._name(metric_id)
        start = first.time - self.step
        args = ["-s", str(self.step), "-b", str(start), ds_arg(first.spec), *rra_args(self.step)]
        if self._control is not None:
            if not self._remote:
                path.parent.mkdir(parents=True, exist_ok=True)
            if self._control.create(name, args):
                result.created += 1
                return start
            last = self._control.last(name)
            if last is None:
                raise ArchiveError(f"{metric_id}: rrdcached cannot read {name}")
            return last
        if path.exists():
            try:
                return int(rrdtool.last(str(path)))
            except rrdtool.OperationalError as exc:
                raise ArchiveError(f"{metric_id}: {path} is not a readable RRD file: {exc}") from exc
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            rrdtool.create(
                str(path), "--no-overwrite", "--step", str(self.step), "--start", str(start), *args[4:]
            )
        except rrdtool.OperationalError as exc:
            if path.exists() and _rrd_readable(path):  # another writer won the race
                return int(rrdtool.last(str(path)))
            path.unlink(missing_ok=True)  # never leave a half-written file behind
            raise ArchiveError(f"{metric_id}: cannot create {path}: {_cause(exc, path.parent)}") from exc
        if not _rrd_readable(path):
            # librrd can report success on a full disk and leave a short file: check, and say why
            path.unlink(missing_ok=True)
            raise ArchiveError(f"{metric_id}: cannot create {path}: {_cause(None, path.parent)}")
        result.created += 1
        return start

    def _update_files(self, mids: list[str], values: list[str], result: WriteResult) -> None:
        grouped: dict[str, list[str]] = defaultdict(list)
        for mid, val in zip(mids, values, strict=True):
            grouped[mid].append(val)
        for mid, vals in grouped.items():
            try:
                rrdtool.update(str(self._name(mid)[0]), *vals)
                result.written += len(vals)
            except rrdtool.OperationalError as exc:
                self._meta.pop(mid, None)
                result.errors.append((mid, str(exc)))

    # -- reading ---------------------------------------------------------------------------------
    def flush(self, metric_id: str | None = None) -> None:
        """Make pending rrdcached updates visible on disk: one metric, or every metric written here."""
        if self._client is None:
            return
        if metric_id is None:
            self.flush_many(list(self._meta))
            return
        if self._flush_paused():
            return
        try:
            self._client.flush(self._name(metric_id)[1])
        except RRDCachedError as exc:
            self._flush_failed(exc)
        else:
            self.flush_error = None

    def flush_many(self, metric_ids: Sequence[str]) -> None:
        if self._client is not None and metric_ids and not self._flush_paused():
            try:
                self._client.flush_many([self._name(m)[1] for m in metric_ids])
            except RRDCachedError as exc:
                self._flush_failed(exc)
            else:
                self.flush_error = None

    def _flush_failed(self, exc: RRDCachedError) -> None:
        if self._flush_errors == "raise" or self.reads_remote:  # remotely there is no disk to fall back on
            raise ArchiveError(f"cannot flush pending updates: {exc}") from exc
        if self.flush_error is None:
            log.warning("%s; showing the RRD files as they are on disk until it answers again", exc)
        self.flush_error = str(exc)
        self._flush_retry_at = self._monotonic() + FLUSH_RETRY_SECONDS

    def _flush_paused(self) -> bool:
        """A reader in "warn" mode whose last flush failed waits FLUSH_RETRY_SECONDS before the next."""
        return self.flush_error is not None and self._monotonic() < self._flush_retry_at

    @property
    def reads_remote(self) -> bool:
        """rrdcached over TCP and no slurper's folder under ``rrd_dir`` here (a collector host): reads go
        through rrdcached too (:mod:`rrd.remote`). Decided at the first read."""
        if self._reads_remote is None:
            self._reads_remote = self._remote and not _has_slurper_dirs(self.rrd_dir)
        return self._reads_remote

    def _client_for_reads(self) -> RRDCachedClient:
        assert self._client is not None
        return self._client

    def exists(self, metric_id: str) -> bool:
        if self.reads_remote:
            return self._remote_read(remote.info, metric_id, flush=False) is not None
        return self.path(metric_id).is_file()

    def _remote_read(self, what: Any, metric_id: str, *args: Any, flush: bool = True) -> Any:
        """``what(client, name, *args)`` for one metric, after flushing it; errors name the metric."""
        client, name = self._client_for_reads(), self._name(metric_id)[1]
        try:
            if flush:
                client.flush(name)
            return what(client, name, *args)
        except (remote.RemoteReadError, RRDCachedError) as exc:
            raise ArchiveError(f"{metric_id}: {exc}") from exc

    def metric_ids(self) -> list[str]:
        """Every metric id with a file in the archive, sorted."""
        if self.reads_remote:
            try:
                return remote.list_ids(self._client_for_reads())
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
        """(time, value) of the last update, or None when the metric has no file."""
        if self.reads_remote:
            got: tuple[int, float | None] | None = self._remote_read(
                remote.last, metric_id, DS_NAME, flush=flush
            )
            return got
        path = self.path(metric_id)
        if not path.is_file():
            return None
        if flush:
            self.flush(metric_id)
        try:
            info = rrdtool.lastupdate(str(path))
        except rrdtool.OperationalError as exc:
            raise ArchiveError(f"{metric_id}: cannot read {path}: {exc}") from exc
        value = info["ds"].get(DS_NAME)
        return int(info["date"].timestamp()), (None if value is None else float(value))

    def last_many(self, metric_ids: Sequence[str]) -> dict[str, tuple[int, float | None]]:
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
        if cf not in CFS:
            raise ArchiveError(f"consolidation function {cf!r} is not one of {', '.join(CFS)}")
        if self.reads_remote:
            got = self._remote_read(remote.fetch, metric_id, cf, start, end)
            if got is None:
                raise ArchiveError(f"no such metric: {metric_id}")
            t0, t1, step, values = got
            return Series(metric_id, t0, t1, step, cf, values)
        path = self.path(metric_id)
        if not path.is_file():
            raise ArchiveError(f"no such metric: {metric_id}")
        self.flush(metric_id)
        args = [str(path), cf, "-s", str(int(start)), "-e", str(int(end))]
        if resolution:
            args += ["-r", str(int(resolution))]
        try:
            (t0, t1, step), _names, rows = rrdtool.fetch(*args)
        except rrdtool.OperationalError as exc:
            raise ArchiveError(f"{metric_id}: fetch failed: {exc}") from exc
        return Series(metric_id, int(t0), int(t1), int(step), cf, [r[0] for r in rows])

    def info(self, metric_id: str) -> dict[str, object]:
        if self.reads_remote:
            got: dict[str, object] | None = self._remote_read(remote.info, metric_id)
            if got is None:
                raise ArchiveError(f"no such metric: {metric_id}")
            return got
        path = self.path(metric_id)
        if not path.is_file():
            raise ArchiveError(f"no such metric: {metric_id}")
        self.flush(metric_id)
        try:
            return dict(rrdtool.info(str(path)))
        except rrdtool.OperationalError as exc:
            raise ArchiveError(f"{metric_id}: {exc}") from exc

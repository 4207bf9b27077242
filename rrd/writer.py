"""Writing the archive: files created on first sight, batched updates directly or through rrdcached,
and rexmon's update journal in front of rrdcached.

The hot path is :meth:`ArchiveWriter.write` (10,000s of values per second): one pass, file names and
last-update times cached. Through rrdcached a batch is formatted, journaled and sent in parts of
``CHUNK`` lines, so rrdcached applies one part while the next is formatted.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import rrdtool

from rrd.journal import JournalError, UpdateJournal, read_lines
from rrd.names import Names
from rrd.rrdcached import BatchStream, RRDCachedClient, RRDCachedError
from rrd.spec import ArchiveError, Update, WriteResult, ds_arg, rra_args

log = logging.getLogger(__name__)
#: lines per part of a streamed BATCH
CHUNK = 1024


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


class ArchiveWriter:
    """Writes one archive under ``rrd_dir``, through rrdcached when ``rrdcached`` is set.

    Through rrdcached, files are created with CREATE and updated with BATCH, every line is journaled
    before it is sent, and :meth:`sync` has rrdcached write the files and empties the journal.
    """

    def __init__(
        self,
        rrd_dir: Path,
        step: int = 60,
        rrdcached: str = "",
        *,
        journal_dir: Path | None = None,
        journal_limit: int = 16 << 20,
        timeout: float = 30.0,
        names: Names | None = None,
    ) -> None:
        self.rrd_dir = Path(rrd_dir)
        self.step = int(step)
        self.rrdcached = rrdcached
        self._remote = bool(rrdcached) and not rrdcached.startswith("unix:")
        self.names = names or Names(self.rrd_dir, self._remote)
        self.client = RRDCachedClient(rrdcached, timeout) if rrdcached else None
        #: CREATE and LAST of files first seen while a streamed BATCH holds ``client`` (second connection)
        self._control = RRDCachedClient(rrdcached, timeout) if rrdcached else None
        #: with rrdcached: rexmon's write-ahead log of updates (opened by the first write only)
        self.journal_dir = Path(journal_dir) if journal_dir else self.rrd_dir / ".journal"
        self.journal_limit = journal_limit
        self.journal: UpdateJournal | None = None
        self._dirty: set[str] = set()
        self._in_flight = 0
        #: per metric written by this process: [last update time, "UPDATE <file> " prefix, is GAUGE]
        self._meta: dict[str, list[Any]] = {}
        self._lock = threading.Lock()

    @property
    def written_ids(self) -> list[str]:
        """Every metric this process has written."""
        return list(self._meta)

    def close(self) -> None:
        """Have rrdcached write this writer's files, drop the journal and release the connections."""
        with self._lock:
            if self.journal is not None:
                synced = self._sync_locked()
                self.journal.close(remove=synced)
                self.journal = None
        for client in (self.client, self._control):
            if client is not None:
                client.close()

    # -- the write-ahead journal (rrdcached only) ------------------------------------------------------
    def _open_journal(self) -> UpdateJournal:
        """Open this process' journal and replay journals left by writers that died."""
        assert self.client is not None
        journal = UpdateJournal(self.journal_dir)
        for orphan in journal.orphans():
            lines = read_lines(orphan)
            if lines:
                self.client.batch(lines, trusted=True)
                self.client.flush_many(sorted({ln.split(" ", 2)[1] for ln in lines}))
                log.warning(
                    "replayed %d update(s) from %s, left by a writer that stopped", len(lines), orphan
                )
            orphan.unlink(missing_ok=True)
        self.client.replay = self._replay_lines
        return journal

    def _replay_lines(self) -> list[str]:
        """What rrdcached may have lost: the journal, less the batch being sent right now."""
        if self.journal is None:
            return []
        lines = self.journal.lines()
        return lines[: len(lines) - self._in_flight]

    def sync(self) -> bool:
        """Have rrdcached write every file updated since the last sync, then empty the journal."""
        with self._lock:
            return self._sync_locked()

    def _sync_locked(self) -> bool:
        if self.journal is None or self.client is None:
            return True
        try:
            self.client.flush_many([self.names.name(m) for m in sorted(self._dirty)])
        except RRDCachedError as exc:
            log.warning("journal kept: %s", exc)
            return False
        self.journal.truncate()
        self._dirty.clear()
        return True

    # -- writing ---------------------------------------------------------------------------------
    def write(self, updates: Iterable[Update]) -> WriteResult:
        """Archive a batch. Old updates are skipped and counted; a bad file fails alone.

        Updates of one metric must come oldest first (the service sorts each slurper's readings);
        an update not newer than the metric's last one is skipped as old.
        """
        result = WriteResult()
        failed: set[str] = set()
        with self._lock:
            if self.client is None:
                mids, lines = self._format(updates, result, failed)
                self._update_files(mids, lines, result)
            else:
                self._write_cached(updates, result, failed)
        return result

    def _prefix(self, metric_id: str) -> str:
        return f"UPDATE {self.names.name(metric_id)} " if self.client is not None else ""

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
        assert self.client is not None
        items = updates if isinstance(updates, list) else list(updates)
        sent: list[str] = []  # metric id of every line sent, in order: rrdcached numbers its errors
        stream = self.client.stream()
        journal_error: Exception | None = None
        try:
            for i in range(0, len(items), CHUNK):
                mids, lines = self._format(items[i : i + CHUNK], result, failed)
                if not lines:
                    continue
                if journal_error is None:
                    data = ("\n".join(lines) + "\n").encode()  # once, for the journal and the BATCH
                    try:
                        if self.journal is None:
                            self.journal = self._open_journal()
                        self.journal.append(data)
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
        if self.journal is not None and self.journal.size > self.journal_limit:
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
        record: list[Any] = [last, self._prefix(mid), first.spec.ds_type == "GAUGE"]
        self._meta[mid] = record
        return record

    def _ensure(self, metric_id: str, first: Update, result: WriteResult) -> int:
        """Create the file if needed; return its last update time (cached after the first look)."""
        path, name = self.names(metric_id)
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
                rrdtool.update(str(self.names.path(mid)), *vals)
                result.written += len(vals)
            except rrdtool.OperationalError as exc:
                self._meta.pop(mid, None)
                result.errors.append((mid, str(exc)))

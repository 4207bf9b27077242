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
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import rrdtool

from rrd.backlog import HELD, Backlog, disk_trouble
from rrd.create import FileMaker, disk_cause
from rrd.journal import JournalError, UpdateJournal
from rrd.names import Names
from rrd.retention import DEFAULT, Retention
from rrd.rrdcached import BatchStream, RRDCachedClient, RRDCachedError
from rrd.spec import Update, WriteResult
from rrd.verify import Segment, check, expected_times

log = logging.getLogger(__name__)
#: lines per part of a streamed BATCH
CHUNK = 1024


class ArchiveWriter:
    """Writes one archive under ``rrd_dir``, through rrdcached when ``rrdcached`` is set.

    Through rrdcached, files are created with CREATE and updated with BATCH, every line is journaled
    before it is sent, and :meth:`sync` has rrdcached write the files and empties the journal.
    """

    def __init__(
        self,
        names: Names,
        step: int,
        rrdcached: str = "",
        *,
        journal_dir: Path | None = None,
        journal_limit: int = 16 << 20,
        timeout: float = 30.0,
        held_limit: int = 200_000,
        retention: Retention = DEFAULT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        #: the archive's files (``names.rrd_dir``) and how rrdcached names them (``names.remote``: over TCP)
        self.names = names
        self.rrd_dir = names.rrd_dir
        self._remote = names.remote
        self.step = int(step)
        self.rrdcached = rrdcached
        self.client = RRDCachedClient(rrdcached, timeout) if rrdcached else None
        #: files of metrics seen for the first time (created in parallel, or retuned)
        self.maker = FileMaker(self.names, self.step, rrdcached, retention=retention, timeout=timeout)
        #: with rrdcached: rexmon's write-ahead log of updates (opened by the first write only)
        self.journal_dir = Path(journal_dir) if journal_dir else self.rrd_dir / ".journal"
        self.journal_limit = journal_limit
        self.journal: UpdateJournal | None = None
        #: sealed journal segments not yet known to be in the files
        self._sealed: list[Segment] = []
        #: files whose dropped values are being sent again: their new values wait in the journal
        self._blocked: set[str] = set()
        self._sync_client = RRDCachedClient(rrdcached, timeout) if rrdcached else None
        self._sync_lock = threading.Lock()
        self._in_flight = 0
        #: values that could not be written (journal or rrd_dir unwritable), oldest first, sent first
        self.backlog = Backlog(held_limit, monotonic)
        #: journaled updates sent again because rrdcached had not written them (a health figure)
        self.resent_total = 0
        #: per metric written by this process: [last update time, "UPDATE <file> " prefix, is GAUGE]
        self._meta: dict[str, list[Any]] = {}
        self._lock = threading.Lock()

    @property
    def held(self) -> list[Update]:
        """Values waiting in memory (journal or rrd_dir not writable), oldest first."""
        return self.backlog.values

    @property
    def refused_total(self) -> int:
        """Values refused since the start because ``held`` reached its bound (a health figure)."""
        return self.backlog.refused_total

    @property
    def written_ids(self) -> list[str]:
        """Every metric this process has written."""
        return list(self._meta)

    def close(self) -> None:
        """Have rrdcached write this writer's files, drop the journal and release the connections.

        Journal segments rrdcached has not written stay on disk; the next writer replays and checks them.
        """
        synced = self.sync()
        with self._lock:
            if self.backlog.values:
                log.error("archive closed with %d value(s) held in memory: lost", len(self.backlog.values))
            if self.journal is not None:
                self.journal.close(remove=synced and self.journal.size == 0)
                self.journal = None
            for segment in self._sealed:
                segment.journal.close(remove=False)
            self._sealed = []
        self.maker.close()
        for client in (self.client, self._sync_client):
            if client is not None:
                client.close()

    # -- the write-ahead journal (rrdcached only) ------------------------------------------------------
    def _open_journal(self) -> UpdateJournal:
        """Open this process' journal and replay journals left by writers that died (checked at sync)."""
        assert self.client is not None
        journal = UpdateJournal(self.journal_dir)
        for path in journal.orphans():
            orphan = UpdateJournal.adopt(path)
            if orphan is None:
                continue
            lines = orphan.lines()
            if not lines:
                orphan.close(remove=True)
                continue
            self.client.batch(lines, trusted=True)
            self._sealed.append(Segment(orphan, expected_times(lines)))
            log.warning("replayed %d update(s) from %s, left by a writer that stopped", len(lines), path)
        self.client.replay = self._replay_lines
        return journal

    def _replay_lines(self) -> list[str]:
        """What rrdcached may have lost: the journal, less the batch being sent right now."""
        if self.journal is None:
            return []
        lines = [line for seg in self._sealed for line in seg.journal.lines()]
        current = self.journal.lines()
        return lines + current[: len(current) - self._in_flight]

    def sync(self) -> bool:
        """Have rrdcached write every file updated since the last sync; drop from the journal exactly what
        the files hold (read back after the flush). False while something is still only in the journal.

        The writer's lock is held only to seal the journal: writes go on while the files are flushed.
        """
        if self.client is None:
            return True
        with self._sync_lock:
            with self._lock:
                if self.journal is not None and self.journal.size:
                    try:
                        # what it holds is read from the sealed file below, off the writer's hot path
                        self._sealed.append(Segment(self.journal.seal(), {}))
                    except JournalError as exc:
                        self.backlog.outage("journal", f"{exc}; the journal is kept as it is")
                segments = list(self._sealed)
                # every line of these since they were blocked is in a sealed segment: they may go free
                was_blocked = set(self._blocked)
            for seg in segments:
                if not seg.expected:
                    seg.expected = expected_times(seg.journal.lines())
            ok = all([self._check(seg) for seg in segments])
            with self._lock:
                short = {name for seg in self._sealed for name in seg.expected}
                self._blocked -= was_blocked - short
            return ok

    def _check(self, segment: Segment) -> bool:
        assert self._sync_client is not None
        try:
            short = check(self._sync_client, segment, self._block, local=not self._remote)
        except (RRDCachedError, OSError) as exc:
            self.resent_total += segment.resent
            segment.resent = 0
            self.backlog.outage("flush", f"journal kept ({segment.journal.path}): {exc}")
            return False
        self.resent_total += segment.resent
        segment.resent = 0
        if short is not None:
            name, on_disk, sent = short.files[0]
            self.backlog.outage(
                "flush",
                f"rrdcached did not write {len(short.files)} file(s) (e.g. {name}: on disk up to "
                f"{on_disk}, sent up to {sent}): {self._cause()}; {short.lines_kept} update(s) kept in "
                f"{segment.journal.path} and sent again at the next sync",
            )
            return False
        with self._lock:
            self._sealed.remove(segment)
            segment.journal.close(remove=True)
        return True

    def _block(self, names: Iterable[str]) -> None:
        """From now on journal these files' updates without sending them, until a sync recovers them."""
        with self._lock:
            self._blocked.update(names)

    def _cause(self) -> str:
        """Why files may not be written, as far as this host can tell."""
        if self._remote:
            return "see rrdcached's log on the archive host"
        if self.rrd_dir.is_dir() and not os.access(self.rrd_dir, os.W_OK):
            return f"{self.rrd_dir} is not writable"
        return disk_cause(None, self.rrd_dir).replace("rrdtool gave no reason", "see rrdcached's log")

    # -- writing ---------------------------------------------------------------------------------
    def write(self, updates: Iterable[Update]) -> WriteResult:
        """Archive a batch. Old updates are skipped and counted; a bad file fails alone.

        Updates of one metric must come oldest first (the service sorts each slurper's readings);
        an update not newer than the metric's last one is skipped as old.
        """
        result = WriteResult()
        failed: dict[str, bool] = {}  # metric id -> its values are held (the disk cannot be written)
        with self._lock:
            if self.backlog.values:  # older than anything new: first
                updates = [*self.backlog.take(), *updates]
            updates = updates if isinstance(updates, list) else list(updates)
            self._prepare(updates, result, failed)
            if self.client is None:
                kept: list[Update] = []
                mids, lines = self._format(updates, result, failed, kept)
                self._update_files(mids, lines, kept, result)
            else:
                self._write_cached(updates, result, failed)
            result.held = len(self.backlog.values)
            full = self.journal is not None and self.journal.size > self.journal_limit
        if full:
            self.sync()
        return result

    def _prefix(self, metric_id: str) -> str:
        return f"UPDATE {self.names.name(metric_id)} " if self.client is not None else ""

    def _format(
        self,
        updates: Iterable[Update],
        result: WriteResult,
        failed: dict[str, bool],
        kept: list[Update] | None = None,
    ) -> tuple[list[str], list[str]]:
        """(metric ids, lines) of the updates to write: "UPDATE <file> <ts>:<value>" or "<ts>:<value>".

        ``kept``: also collect the updates formatted (writing files directly, to hold them on failure).
        """
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
                m = None if mid in failed else self._first_sight(mid, u, result, failed)
                if m is None:
                    if failed[mid]:
                        self.backlog.hold((u,), result)
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
            if kept is not None:
                kept.append(u)
        result.skipped_old += skipped
        return mids, lines

    def _write_cached(self, updates: Iterable[Update], result: WriteResult, failed: dict[str, bool]) -> None:
        """Format, journal and send part by part; nothing is sent that is not journaled first."""
        assert self.client is not None
        items = updates if isinstance(updates, list) else list(updates)
        sent: list[str] = []  # metric id of every line sent, in order: rrdcached numbers its errors
        stream = self.client.stream()
        journal_error: Exception | None = None
        try:
            for i in range(0, len(items), CHUNK):
                part = items[i : i + CHUNK]
                mids, lines = self._format(part, result, failed)
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
                    # not sent: held, and the cached last-times forgotten so the retry is not "old"
                    unsent = set(mids)
                    for mid in unsent:
                        self._meta.pop(mid, None)
                    self.backlog.hold((u for u in part if u.metric_id in unsent), result)
                    msg = f"journal failed: {journal_error}; {HELD}"
                    result.errors.extend((mid, msg) for mid in dict.fromkeys(mids))
                    continue
                if self._blocked:
                    mids, lines, data = self._unblocked(mids, lines, result)
                    if not lines:
                        continue
                self._in_flight += len(lines)
                sent += mids
                stream.send(data, len(lines))
            if sent:
                self._finish(stream, sent, result)
        finally:
            stream.close()
            self._in_flight = 0
        if journal_error is not None:
            self.backlog.outage("journal", f"cannot write the update journal: {journal_error}")

    def _unblocked(
        self, mids: list[str], lines: list[str], result: WriteResult
    ) -> tuple[list[str], list[str], bytes]:
        """Leave out the lines of files being recovered: journaled only, the next sync sends them after
        the older values rrdcached dropped (a newer value first would make those look written)."""
        keep = [i for i, mid in enumerate(mids) if self.names.name(mid) not in self._blocked]
        result.written += len(mids) - len(keep)
        mids, lines = [mids[i] for i in keep], [lines[i] for i in keep]
        return mids, lines, ("\n".join(lines) + "\n").encode()

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

    def _first_sight(
        self, mid: str, first: Update, result: WriteResult, failed: dict[str, bool]
    ) -> list[Any] | None:
        """The metric's cached record [last update, line prefix, is GAUGE]; None if its file failed
        (``failed[mid]`` then says whether its values are held: the disk cannot be written now)."""
        got = self.maker.ensure_many([first])[0]
        return self._record(first, got, result, failed)

    def _prepare(self, items: Sequence[Update], result: WriteResult, failed: dict[str, bool]) -> None:
        """Create (in parallel) or retune the files of the metrics this batch has for the first time."""
        meta = self._meta
        firsts: dict[str, Update] = {}
        for u in items:
            if u.metric_id not in meta and u.metric_id not in firsts and u.metric_id not in failed:
                firsts[u.metric_id] = u
        if firsts:
            news = list(firsts.values())
            for u, got in zip(news, self.maker.ensure_many(news), strict=True):
                self._record(u, got, result, failed)

    def _record(
        self, first: Update, got: tuple[int, bool] | Exception, result: WriteResult, failed: dict[str, bool]
    ) -> list[Any] | None:
        """Cache a new metric's record, or note why its file failed (held if the disk is the cause)."""
        mid = first.metric_id
        if isinstance(got, Exception):
            exc = got
            failed[mid] = not self._remote and disk_trouble(self.rrd_dir)
            if failed[mid]:
                self.backlog.outage("create", f"{exc}; values are held until {self.rrd_dir} can be written")
                result.errors.append((mid, f"{exc}; {HELD}"))
            else:
                result.errors.append((mid, str(exc)))
            return None
        last, created = got
        result.created += created
        record: list[Any] = [last, self._prefix(mid), first.spec.ds_type == "GAUGE"]
        self._meta[mid] = record
        return record

    def _update_files(
        self, mids: list[str], values: list[str], kept: list[Update], result: WriteResult
    ) -> None:
        grouped: dict[str, list[str]] = defaultdict(list)
        for mid, val in zip(mids, values, strict=True):
            grouped[mid].append(val)
        for mid, vals in grouped.items():
            try:
                rrdtool.update(str(self.names.path(mid)), *vals)
                result.written += len(vals)
            except rrdtool.OperationalError as exc:
                self._meta.pop(mid, None)
                if not self._remote and disk_trouble(self.rrd_dir):
                    self.backlog.outage("update", f"{mid}: {exc}; values are held until it can be written")
                    self.backlog.hold((u for u in kept if u.metric_id == mid), result)
                    result.errors.append((mid, f"{exc}; {HELD}"))
                else:
                    result.errors.append((mid, str(exc)))

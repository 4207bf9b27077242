"""rexmon's own write-ahead log of the updates it sends to rrdcached.

rrdcached acknowledges an update before it is durable: its journal is written through a stdio buffer with
no flush (rrdtool-1.x issue #1137), so a kill -9 of rrdcached loses up to one buffer of acknowledged
updates. Each writing process therefore appends its UPDATE lines to a journal file of its own *before*
sending them (unbuffered ``os.write``, so they survive a kill -9 of either process), replays them when
rrdcached restarts, and truncates the file once rrdcached has written the files (FLUSH). A journal left
behind by a process that died is replayed by the next writer and then removed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)
SUFFIX = ".wal"


class JournalError(Exception):
    """The journal directory or file cannot be used; the message names the path."""


class UpdateJournal:
    """One process's journal: ``<dir>/<host>-<pid>.wal``, locked while the process lives."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.path = self.directory / f"{socket.gethostname()}-{os.getpid()}{SUFFIX}"
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise JournalError(f"cannot open the update journal in {self.directory}: {exc}") from exc
        self.size = os.fstat(self._fd).st_size

    def append(self, data: bytes) -> None:
        """Write newline-terminated lines before they are sent; OSError (e.g. disk full): send nothing."""
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += len(data)

    def lines(self) -> list[str]:
        return read_lines(self.path)

    def truncate(self) -> None:
        os.ftruncate(self._fd, 0)
        self.size = 0

    def close(self, remove: bool) -> None:
        try:
            if remove:
                self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)

    def orphans(self) -> Iterator[Path]:
        """Journals of processes that are gone (their lock is free); never this process' own."""
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            if path == self.path:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer owns it
            finally:
                os.close(fd)
            yield path


def read_lines(path: Path) -> list[str]:
    """The complete UPDATE lines of a journal (a torn last line from a crash is dropped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", "replace")
    complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    return [line for line in complete.split("\n") if line.startswith("UPDATE ")]

"""rexmon's own write-ahead log of the updates it sends to rrdcached.

rrdcached acknowledges an update before it is durable: its journal is written through a stdio buffer with
no flush (rrdtool-1.x issue #1137), so a kill -9 of rrdcached loses up to one buffer of acknowledged
updates. Each writing process therefore appends its UPDATE lines to a journal file of its own *before*
sending them (unbuffered ``os.write``, so they survive a kill -9 of either process), replays them when
rrdcached restarts, and removes them only once the files' last updates, read back after a FLUSH, cover
them (rrdcached answers FLUSH with success even when its write failed and it dropped the values). A sync
*seals* the journal (renames it to a segment of its own and starts a new one), so the writer goes on
while the sealed segment is flushed and checked. A journal left behind by a process that died is
replayed by the next writer, and removed once checked in the same way.
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

    def __init__(self, directory: Path, path: Path | None = None) -> None:
        self.directory = Path(directory)
        self._sealed = 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.path = path or self.directory / f"{socket.gethostname()}-{os.getpid()}{SUFFIX}"
            self._fd = self._open(self.path)
        except OSError as exc:
            raise JournalError(f"cannot open the update journal in {self.directory}: {exc}") from exc
        self.size = os.fstat(self._fd).st_size

    @staticmethod
    def _open(path: Path) -> int:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise
        return fd

    @classmethod
    def adopt(cls, path: Path) -> UpdateJournal | None:
        """Take over a dead writer's journal (locked from now on); None if a live writer holds it."""
        try:
            return cls(path.parent, path)
        except JournalError:
            return None

    def seal(self) -> UpdateJournal:
        """Rename this journal to a segment of its own (returned, still locked) and start an empty one.

        Raises JournalError (the journal is unchanged) when the new file cannot be made.
        """
        self._sealed += 1
        sealed_path = self.path.with_name(f"{self.path.stem}-{self._sealed}{SUFFIX}")
        try:
            fd = self._open(self.path.with_name(self.path.name + ".new"))
            os.rename(self.path, sealed_path)
            os.rename(self.path.with_name(self.path.name + ".new"), self.path)
        except OSError as exc:
            raise JournalError(f"cannot start a new update journal in {self.directory}: {exc}") from exc
        sealed = object.__new__(UpdateJournal)
        sealed.directory, sealed.path, sealed._fd, sealed.size, sealed._sealed = (
            self.directory, sealed_path, self._fd, self.size, 0
        )  # fmt: skip
        self._fd, self.size = fd, 0
        return sealed

    def rewrite(self, lines: list[str]) -> None:
        """Keep only ``lines`` (what is still not in the files); OSError leaves the journal as it was."""
        data = "".join(f"{line}\n" for line in lines).encode()
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(tmp, self.path)
        except OSError:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(self._fd)
        self._fd, self.size = fd, len(data)

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
            if path == self.path or path.name.endswith((".new", ".tmp")):
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

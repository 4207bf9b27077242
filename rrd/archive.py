"""The RRD archive as one object: an :class:`~rrd.writer.ArchiveWriter` and an
:class:`~rrd.reader.ArchiveReader` sharing a directory and an rrdcached address.

Writing (batches, journal, rrdcached) lives in :mod:`rrd.writer`, reading (local files or rrdcached
``FETCH``/``INFO``) in :mod:`rrd.reader`, and the read-side flush policy in :mod:`rrd.flush`. A process
that only reads (the web site, ``rexmon metrics``) may use :class:`ArchiveReader` alone; this class
keeps the one-object interface the collector and the tests use. Each side has its own rrdcached
connection, so a read never waits for the writer's BATCH.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from rrd.flush import FLUSH_RETRY_SECONDS, FlushErrors
from rrd.names import Names
from rrd.reader import ArchiveReader
from rrd.retention import DEFAULT, Retention
from rrd.spec import (
    CFS,
    DAY,
    DS_NAME,
    ArchiveError,
    DSType,
    Series,
    SeriesSpec,
    Update,
    WriteResult,
    ds_arg,
    rra_args,
)
from rrd.writer import CHUNK, ArchiveWriter

__all__ = [
    "CFS",
    "CHUNK",
    "DAY",
    "DS_NAME",
    "FLUSH_RETRY_SECONDS",
    "Archive",
    "ArchiveError",
    "ArchiveReader",
    "ArchiveWriter",
    "DSType",
    "Series",
    "SeriesSpec",
    "Update",
    "WriteResult",
    "ds_arg",
    "rra_args",
]


class Archive:
    """One RRD archive under ``rrd_dir``, optionally fronted by rrdcached.

    With ``rrdcached`` set, every write goes through it (creation with CREATE, updates with BATCH) and
    every read too (FLUSH then INFO, or FETCH). Over a unix socket files are named by absolute path;
    over TCP by their path relative to ``rrd_dir``, which must be rrdcached's ``-b`` base directory.
    """

    def __init__(
        self,
        rrd_dir: Path,
        step: int = 60,
        rrdcached: str = "",
        *,
        journal_dir: Path | None = None,
        journal_limit: int = 16 << 20,
        flush_errors: FlushErrors = "raise",
        monotonic: Callable[[], float] = time.monotonic,
        timeout: float = 30.0,
        retention: Retention = DEFAULT,
    ) -> None:
        self.rrd_dir = Path(rrd_dir)
        if any(c in str(self.rrd_dir) for c in "\n\r"):
            raise ArchiveError(f"rrd_dir {str(self.rrd_dir)!r} contains a line break")
        self.step = int(step)
        self.rrdcached = rrdcached
        names = Names(self.rrd_dir, bool(rrdcached) and not rrdcached.startswith("unix:"))
        self.writer = ArchiveWriter(
            names,
            self.step,
            rrdcached,
            journal_dir=journal_dir,
            journal_limit=journal_limit,
            timeout=timeout,
            monotonic=monotonic,
            retention=retention,
        )
        self.reader = ArchiveReader(
            names, self.step, rrdcached, flush_errors=flush_errors, monotonic=monotonic, timeout=timeout
        )
        self.journal_dir = self.writer.journal_dir

    def close(self) -> None:
        """A writer first has rrdcached write its files and drops its journal; then both disconnect."""
        self.writer.close()
        self.reader.close()

    # -- writing ---------------------------------------------------------------------------------
    def write(self, updates: Iterable[Update]) -> WriteResult:
        """Archive a batch (see :meth:`ArchiveWriter.write`)."""
        return self.writer.write(updates)

    def sync(self) -> bool:
        """Have rrdcached write every file updated since the last sync, then empty the journal."""
        return self.writer.sync()

    # -- reading ---------------------------------------------------------------------------------
    def path(self, metric_id: str) -> Path:
        return self.reader.path(metric_id)

    @property
    def flush_error(self) -> str | None:
        return self.reader.flush_error

    @property
    def reads_remote(self) -> bool:
        return self.reader.reads_remote

    def flush(self, metric_id: str | None = None) -> None:
        """Make pending rrdcached updates visible on disk: one metric, or every metric written here."""
        if metric_id is None:
            self.reader.flush_many(self.writer.written_ids)
        else:
            self.reader.flush(metric_id)

    def flush_many(self, metric_ids: Sequence[str]) -> None:
        self.reader.flush_many(metric_ids)

    def exists(self, metric_id: str) -> bool:
        return self.reader.exists(metric_id)

    def metric_ids(self) -> list[str]:
        return self.reader.metric_ids()

    def last(self, metric_id: str, *, flush: bool = True) -> tuple[int, float | None] | None:
        return self.reader.last(metric_id, flush=flush)

    def last_many(self, metric_ids: Sequence[str]) -> dict[str, tuple[int, float | None]]:
        return self.reader.last_many(metric_ids)

    def fetch(
        self, metric_id: str, start: int, end: int, cf: str = "AVERAGE", resolution: int | None = None
    ) -> Series:
        return self.reader.fetch(metric_id, start, end, cf, resolution)

    def info(self, metric_id: str) -> dict[str, object]:
        return self.reader.info(metric_id)

    def daemon_args(self) -> list[str]:
        return self.reader.daemon_args()

    def graph_source(self, metric_id: str) -> Path:
        return self.reader.graph_source(metric_id)

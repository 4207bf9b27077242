"""The read-side flush policy: when a reader has rrdcached write pending updates, and what it does
when rrdcached does not answer.

A reader flushes the files it is about to read, so it sees every value rrdcached holds. With
``errors="raise"`` (the CLI) a failed flush is an :class:`ArchiveError`; with ``errors="warn"`` (the
web site) the reader reads the files as they are on disk, says so once in the log, keeps the reason in
``error`` until a flush succeeds again, and tries no flush for ``retry_seconds`` (a dead TCP peer would
otherwise hold every page for the connect timeout).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Literal

from rrd.rrdcached import RRDCachedClient, RRDCachedError
from rrd.spec import ArchiveError

log = logging.getLogger(__name__)
FlushErrors = Literal["raise", "warn"]
#: with errors="warn": after a failed flush, reads skip flushing for this long
FLUSH_RETRY_SECONDS = 10.0


class FlushPolicy:
    """Flushes for readers; remembers a failure so that readers can fall back to the files on disk."""

    def __init__(
        self,
        client: RRDCachedClient | None,
        errors: FlushErrors = "raise",
        monotonic: Callable[[], float] = time.monotonic,
        retry_seconds: float | None = None,
    ) -> None:
        self.client = client
        self.errors = errors
        self.monotonic = monotonic
        #: None: ``FLUSH_RETRY_SECONDS`` as it is when a flush fails
        self.retry_seconds = retry_seconds
        #: why the last flush failed, until one succeeds again ("warn" only)
        self.error: str | None = None
        self._retry_at = 0.0

    def flush(self, names: Sequence[str], *, remote: bool = False) -> bool:
        """Flush ``names``; True when rrdcached answered (or there is none), False to read the disk.

        ``remote``: there are no files here to fall back on, so a failure always raises.
        """
        if self.client is None or not names:
            return True
        if self.paused():
            return False
        try:
            self.client.flush_many(list(names))
        except RRDCachedError as exc:
            self.failed(exc, remote=remote)
            return False
        self.error = None
        return True

    def failed(self, exc: RRDCachedError, *, remote: bool = False) -> None:
        """Raise (CLI, or no files here), or remember the failure and read the disk ("warn")."""
        if self.errors == "raise" or remote:
            raise ArchiveError(f"cannot flush pending updates: {exc}") from exc
        if self.error is None:
            log.warning("%s; showing the RRD files as they are on disk until it answers again", exc)
        self.error = str(exc)
        pause = FLUSH_RETRY_SECONDS if self.retry_seconds is None else self.retry_seconds
        self._retry_at = self.monotonic() + pause

    def paused(self) -> bool:
        """A "warn" reader whose last flush failed waits ``retry_seconds`` before the next try."""
        return self.error is not None and self.monotonic() < self._retry_at

"""Values the archive cannot write right now, and the one log line per minute that says so.

When rexmon's journal directory or ``rrd_dir`` is read-only or full, values wait here (in memory, up to
a bound) and go first with the next batch; past the bound they are refused and counted, never dropped
silently. An outage is logged once per ``OUTAGE_LOG_SECONDS`` per kind, not once per value.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rrd.spec import Update, WriteResult

log = logging.getLogger("rrd.writer")
#: an outage of the journal or of rrd_dir is logged once per this many seconds (per kind)
OUTAGE_LOG_SECONDS = 60.0
#: said of every value held, in the batch's errors
HELD = "held in memory, sent again by the next write"


class Backlog:
    """Held values (oldest first), the bound on them, and the count of values refused since the start."""

    def __init__(self, limit: int = 200_000, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.values: list[Update] = []
        self.limit = limit
        self.refused_total = 0
        self._monotonic = monotonic
        self._logged: dict[str, float] = {}

    def hold(self, updates: Iterable[Update], result: WriteResult) -> None:
        """Keep values that cannot be written now, up to ``limit``; count the ones refused."""
        for u in updates:
            if len(self.values) < self.limit:
                self.values.append(u)
            else:
                result.refused += 1
                self.refused_total += 1

    def take(self) -> list[Update]:
        """The held values, to go first in the next batch (they are held again if they fail again)."""
        out, self.values = self.values, []
        return out

    def outage(self, kind: str, message: str) -> None:
        """One error line per kind of outage per OUTAGE_LOG_SECONDS, with how much is held meanwhile."""
        now = self._monotonic()
        if now >= self._logged.get(kind, 0.0):
            self._logged[kind] = now + OUTAGE_LOG_SECONDS
            extra = f" ({len(self.values)} value(s) held in memory)" if self.values else ""
            log.error("archive: %s%s", message, extra)


def disk_trouble(rrd_dir: Path) -> bool:
    """Whether ``rrd_dir`` here is read-only or full (values then wait in memory)."""
    root = rrd_dir
    while not root.exists() and root != root.parent:
        root = root.parent
    if not os.access(root, os.W_OK):
        return True
    try:
        st = os.statvfs(root)
    except OSError:
        return True
    return st.f_bavail * st.f_frsize < 1 << 20

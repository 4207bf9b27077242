"""What the writer says about its rounds: totals with bounded memory, and errors logged without floods.

An archive that refuses a whole round (rrdcached away, a read-only disk) is one line when it starts and
one when it ends (:class:`~rexmon.episodes.Episode`); other errors are logged once per distinct message
per ERROR_QUIET seconds, at most ERRORS_LOGGED a round. A slurper failing every run is logged when its
error is new or changed (and again every ERROR_QUIET seconds), then once when it recovers. Nothing here
grows with the number of rounds.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

from rexmon.episodes import Episode
from rrd.archive import WriteResult

#: archive errors kept with their text (``rexmon run --once`` prints them); the rest are counted
RECENT_ERRORS = 100
#: distinct archive error messages logged per ERROR_QUIET seconds at most, each at most once
ERRORS_LOGGED = 20
ERROR_QUIET = 600.0


@dataclass
class Totals:
    """What the writer archived since start: counters, and the last RECENT_ERRORS errors with their text."""

    written: int = 0
    skipped_old: int = 0
    created: int = 0
    error_count: int = 0
    recent: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=RECENT_ERRORS))

    @property
    def errors(self) -> list[tuple[str, str]]:
        """The most recent archive errors (metric id, message)."""
        return list(self.recent)

    def add(self, res: WriteResult) -> None:
        self.written += res.written
        self.skipped_old += res.skipped_old
        self.created += res.created
        self.error_count += len(res.errors)
        self.recent.extend(res.errors[-RECENT_ERRORS:])


class WriteLog:
    """The writer's log lines about archive and slurper errors (called from the writer thread only)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.log = logger
        self._refused = Episode(logger)
        #: error message -> when it was last logged (pruned; bounded by ERRORS_LOGGED a round)
        self._logged: dict[str, float] = {}
        #: per slurper: the error last logged and when (bounded by the number of slurpers)
        self._run_errors: dict[str, tuple[str, float]] = {}

    def run_failed(self, slurper_id: str, error: str) -> None:
        """A slurper's run failed with ``error``."""
        now = time.monotonic()
        last = self._run_errors.get(slurper_id)
        if last is None or last[0] != error or now - last[1] >= ERROR_QUIET:
            self.log.error("%s", error)
            self._run_errors[slurper_id] = (error, now)

    def run_ok(self, slurper_id: str) -> None:
        """A slurper's run succeeded (one line if it had failed)."""
        if self._run_errors.pop(slurper_id, None) is not None:
            self.log.warning("slurper %s: runs succeed again", slurper_id)

    def archive(self, res: WriteResult, attempted: int) -> None:
        """A round the archive refused whole (rrdcached away, a read-only disk) starts an outage: one line
        then, one when writes succeed again. Other errors: each distinct message at most once per
        ERROR_QUIET seconds, at most ERRORS_LOGGED per round, so a broken file is not a line per round."""
        if res.errors and res.written == 0 and res.skipped_old == 0:
            self._refused.fail(
                "archive: every write fails (%s: %s); values are not archived until it answers again "
                "(slurpers with a checkpoint read their window again then); one line when it recovers",
                res.errors[0][0], res.errors[0][1], items=attempted,
            )  # fmt: skip
            return
        if res.written and self._refused.active:
            self._refused.ok(
                "archive: writes succeed again after %(seconds).0f s; %(count)d round(s), %(items)d value(s) "
                "could not be archived meanwhile"
            )
        now = time.monotonic()
        if len(self._logged) > 10 * ERRORS_LOGGED:
            self._logged = {m: t for m, t in self._logged.items() if now - t < ERROR_QUIET}
        shown = capped = 0
        for mid, msg in res.errors:
            if now - self._logged.get(msg, -ERROR_QUIET) < ERROR_QUIET:
                continue  # said already (the same cause for many metrics, or again within ERROR_QUIET)
            if shown >= ERRORS_LOGGED:
                capped += 1
                continue
            self._logged[msg] = now
            shown += 1
            self.log.error("archive: %s: %s", mid, msg)
        if capped:
            self.log.error(
                "archive: %d more error(s) with other causes this round (at most %d logged a round)",
                capped, ERRORS_LOGGED,
            )  # fmt: skip

"""One log line when a trouble starts and one when it ends, however many rounds it lasts.

A collector round that fails the same way every second for a minute (rrdcached away, the database locked,
a full queue) must not write a line per metric per round: an operator needs to know that it started, why,
how much it cost and when it ended. :class:`Episode` counts what happened in between and says it once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class Episode:
    """A trouble that starts, repeats (counted, not logged) and ends; thread-safe."""

    def __init__(self, logger: logging.Logger, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._since: float | None = None
        #: occurrences and items (values, messages...) counted during the current episode
        self.count = 0
        self.items = 0
        #: episodes so far (for tests and self-monitoring)
        self.episodes = 0

    @property
    def active(self) -> bool:
        return self._since is not None

    def fail(self, message: str, *args: object, items: int = 0, level: int = logging.ERROR) -> bool:
        """Record one occurrence; log ``message % args`` only if this starts an episode (returns True)."""
        with self._lock:
            self.count += 1
            self.items += items
            if self._since is not None:
                return False
            self._since = self._monotonic()
            self.episodes += 1
        self._log.log(level, message, *args)
        return True

    def ok(self, message: str) -> bool:
        """End the episode, if one is going on: log ``message`` formatted with a mapping of ``seconds``
        (how long it lasted), ``count`` (occurrences) and ``items`` (what they cost)."""
        with self._lock:
            if self._since is None:
                return False
            seconds = self._monotonic() - self._since
            count, items = self.count, self.items
            self._since, self.count, self.items = None, 0, 0
        self._log.warning(message, {"seconds": seconds, "count": count, "items": items})
        return True


def first_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, shortened: enough to act on, never a page of SQL."""
    text = (str(exc).splitlines() or [""])[0][:limit]
    return f"{type(exc).__name__}: {text}"

"""A background feed of FTS messages to a STOMP broker (used by the demo when ActiveMQ is running)."""

from __future__ import annotations

import logging
import random
import threading
import time

from rexmon.demo import transfer_sim as ts

log = logging.getLogger(__name__)
COMPLETE = "/topic/transfer.fts_monitoring_complete"
QUEUE = "/topic/transfer.fts_monitoring_queue_state"


class StompFeed:
    """Every few seconds: transfer-complete messages for each simulated link, and an optimizer update.

    The failing link (``transfer_sim.FAILING``) ends most of its transfers in ``FAILED``.
    """

    def __init__(self, host: str, port: int, seed: int = 1, period: float = 5.0) -> None:
        self.host, self.port, self.period = host, port, period
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._publisher: ts.FTSPublisher | None = None

    def start(self) -> StompFeed:
        """Connect (raises when the broker refuses) and publish in a daemon thread."""
        self._publisher = ts.FTSPublisher(self.host, self.port)
        self._thread = threading.Thread(target=self._loop, name="demo-stomp-feed", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.publish_once(time.time())
            except Exception as exc:  # a broker restart must not end the demo
                log.warning("STOMP feed: %s", exc)

    def publish_once(self, now: float) -> None:
        """One round of messages."""
        assert self._publisher is not None
        for src, dst, vo, peak in ts.FTS_LINKS:
            for _ in range(self._rng.randint(1, 3)):
                failing = dst == ts.FAILING and self._rng.random() < 0.8
                size = self._rng.randint(1, 4) * 2**30
                start = now - self._rng.uniform(20, 120)
                body = ts.complete_message(src, dst, vo, "Error" if failing else "Ok", size, start, now)
                self._publisher.send(COMPLETE, body)
            active = int(peak * (0.2 + 0.6 * ts.daily(now)))
            body = ts.optimizer_message(src, dst, active, self._rng.randint(0, 50), active + 10, now)
            self._publisher.send(QUEUE, body)

    def stop(self) -> None:
        """Stop publishing and disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._publisher is not None:
            self._publisher.close()

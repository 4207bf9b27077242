"""The alarm side's own threads, so archiving never waits for the database or a notification target.

The writer hands each round's archived values to :meth:`AlarmWorker.submit` and goes on at once. One
thread evaluates them (database I/O: records, history, outbox) and does the periodic work (staleness,
downtime edges, re-notification); another delivers the outbox. Values wait in a bounded backlog: beyond
``max_backlog`` values the oldest are dropped for the alarms (they are archived all the same), counted in
``dropped`` and said in one log line per episode. The sink itself may be built lazily (``rexmon run``
starts while the database is unreachable): until it can be built, values are archived and the alarms
start, like after an outage mid-run, once the database answers.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from sqlalchemy.exc import DBAPIError

from alarms.observation import AlarmSink, Observation
from rexmon import selfmetrics
from rexmon.episodes import Episode, first_line

log = logging.getLogger(__name__)
Clock = Callable[[], float]
#: values waiting for evaluation at most (about 200 bytes each); beyond, the oldest are dropped
MAX_BACKLOG = 200_000
#: values evaluated per database transaction at most, so one commit stays small
MAX_ROUND = 50_000
#: seconds between retries of building the sink while the database is unreachable
CONNECT_RETRY = 5.0


@runtime_checkable
class SplitSink(Protocol):
    """A sink whose delivery can run apart from its evaluation (``alarms.pipeline.AlarmPipeline``)."""

    def housekeep(self, now: float) -> None:
        """The periodic work of ``tick`` without delivery."""

    def deliver(self, now: float, *, wait: bool = True) -> int:
        """Deliver the due outbox; with ``wait=False`` start one attempt per idle target and return."""


class AlarmWorker:
    """Evaluates archived values and delivers notifications in threads of their own."""

    def __init__(
        self,
        sink: AlarmSink | Callable[[], AlarmSink],
        clock: Clock = time.time,
        *,
        max_backlog: int = MAX_BACKLOG,
        tick_interval: float = 1.0,
        connect_retry: float = CONNECT_RETRY,
    ) -> None:
        self._sink: AlarmSink | None = None
        self._factory: Callable[[], AlarmSink] | None = None
        if callable(sink) and not hasattr(sink, "observe"):
            self._factory = sink
        else:
            self._sink = sink  # type: ignore[assignment]
        self.clock = clock
        self.max_backlog = max_backlog
        self.tick_interval = tick_interval
        self.connect_retry = connect_retry
        self._pending: deque[Sequence[Observation]] = deque()
        self._backlog = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next_connect = 0.0
        #: values dropped for the alarms since start (backlog full); failed alarm steps since start
        self.dropped = 0
        self.failures = 0
        self._overflow = Episode(log)
        self._db = Episode(log)
        self._delivery = Episode(log)

    # -- the writer's side ----------------------------------------------------------------------------
    def submit(self, observations: Sequence[Observation]) -> None:
        """Queue a round's archived values; never blocks (the oldest are dropped beyond the bound)."""
        if not observations:
            return
        with self._cond:
            self._pending.append(observations)
            self._backlog += len(observations)
            dropped = 0
            while self._backlog > self.max_backlog and len(self._pending) > 1:
                dropped += len(old := self._pending.popleft())
                self._backlog -= len(old)
            self.dropped += dropped
            self._cond.notify()
        if dropped:
            self._overflow.fail(
                "alarms: evaluation is behind by more than %d values; the oldest are dropped for the alarms "
                "(they are archived all the same) until it catches up", self.max_backlog, items=dropped,
                level=logging.WARNING,
            )  # fmt: skip

    @property
    def backlog(self) -> int:
        """Values waiting for evaluation."""
        return self._backlog

    # -- threads ----------------------------------------------------------------------------------------
    def start(self) -> None:
        for name, target in (("rexmon-alarms", self._evaluate_loop), ("rexmon-notify", self._deliver_loop)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 30.0) -> None:
        """Evaluate what is queued (within ``timeout``), deliver what is due, release the sink."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        if self._sink is not None:
            self._do(self._db, "close", self._sink.close)

    def run_once(self) -> None:
        """Cron style (``rexmon run --once``), in the caller's thread: evaluate what was submitted, tick
        (which delivers), close."""
        sink = self._get_sink()
        with self._cond:
            observations = [o for part in self._pending for o in part]
            self._pending.clear()
            self._backlog = 0
        if sink is None:
            return
        self._do(self._db, "evaluation", sink.observe, observations, self.clock())
        self._do(self._db, "tick", sink.tick, self.clock())
        self._do(self._db, "close", sink.close)

    def _evaluate_loop(self) -> None:
        next_tick = time.monotonic()
        while True:
            with self._cond:
                if not self._pending and not self._stop.is_set():
                    self._cond.wait(max(0.0, next_tick - time.monotonic()))
                batch = self._take()
            stopping = self._stop.is_set()
            sink = self._get_sink()
            failed = sink is None
            if sink is not None and batch:
                error = self._do(self._db, "evaluation", sink.observe, batch, self.clock())
                failed = error is not None
                if failed and not isinstance(error, DBAPIError):
                    batch = []  # not the database's fault: retrying would fail the same way forever
            if failed and batch:
                self._put_back(batch)  # judged once the database answers (or dropped beyond the bound)
            if sink is not None and not failed and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.tick_interval
                housekeep = sink.housekeep if isinstance(sink, SplitSink) else sink.tick
                self._do(self._db, "tick", housekeep, self.clock())
            if stopping and (failed or not self._pending):
                return
            if failed:
                self._stop.wait(1.0)  # a database that refuses at once is not hammered
            elif self._backlog == 0 and self._overflow.active:
                self._overflow.ok(
                    "alarms: evaluation caught up after %(seconds).0f s; %(items)d value(s) were dropped for "
                    "the alarms"
                )

    def _put_back(self, batch: list[Observation]) -> None:
        """Return values whose evaluation failed to the front of the backlog, within its bound."""
        with self._cond:
            room = max(0, self.max_backlog - self._backlog)
            keep = batch[len(batch) - room :] if room < len(batch) else batch
            if keep:
                self._pending.appendleft(keep)
                self._backlog += len(keep)
            self.dropped += len(batch) - len(keep)

    def _take(self) -> list[Observation]:
        """Up to MAX_ROUND queued values, oldest first (called with the condition held)."""
        out: list[Observation] = []
        while self._pending and len(out) + len(self._pending[0]) <= max(MAX_ROUND, len(self._pending[0])):
            part = self._pending.popleft()
            self._backlog -= len(part)
            out.extend(part)
            if len(out) >= MAX_ROUND:
                break
        return out

    def _deliver_loop(self) -> None:
        while not self._stop.wait(self.tick_interval):
            sink = self._sink
            if isinstance(sink, SplitSink):
                self._do(
                    self._delivery, "delivery", functools.partial(sink.deliver, wait=False), self.clock()
                )

    def _get_sink(self) -> AlarmSink | None:
        """The sink, built on first use; None (one log line per outage) while it cannot be built."""
        if self._sink is None and self._factory is not None and time.monotonic() >= self._next_connect:
            try:
                self._sink = self._factory()
            except Exception as exc:
                self.failures += 1
                self._next_connect = time.monotonic() + self.connect_retry
                self._db.fail(
                    "alarms: cannot start (%s); values are archived, alarms start when the database "
                    "answers (retried every %.0f s)", first_line(exc), self.connect_retry,
                )  # fmt: skip
                return None
            self._db.ok("alarms: the database answers; evaluation started after %(seconds).0f s")
        return self._sink

    def _do(
        self, episode: Episode, what: str, call: Callable[..., object], *args: object
    ) -> Exception | None:
        """Run one alarm step; if it fails say so once per outage, keep going, and say when it recovers.

        Values are archived before they reach this point, so nothing is lost for the archive; a round
        whose evaluation failed is kept and judged once the database answers. Returns the error, if any.
        """
        try:
            with selfmetrics.ALARM_ROUND.labels(what).time():
                call(*args)
        except Exception as exc:
            self.failures += 1
            episode.fail(
                "alarms: %s failed (%s); values are still archived, alarms resume when the database "
                "answers again", what, first_line(exc),
            )  # fmt: skip
            return exc
        if episode is self._delivery:
            episode.ok("alarms: notification delivery works again after %(seconds).0f s")
        else:
            episode.ok(
                "alarms: the database answers again; evaluation resumed after %(seconds).0f s "
                "(%(count)d failed step(s))"
            )
        return None

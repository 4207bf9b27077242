"""The only place that joins the pieces: scheduler -> slurpers -> archive -> alarms.

Slurpers run in APScheduler's thread pool and put their results on a bounded queue; one writer thread
drains it in batches into the archive (through rrdcached when configured), commits slurper checkpoints
after their values are archived, archives rexmon's own health metrics, and hands the archived values to
the alarm side (:mod:`rexmon.alarm_worker`), whose threads evaluate them and deliver notifications. The
writer never waits for the database or a notification target. Nothing flows back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler

from alarms.observation import AlarmSink, Observation
from rexmon import selfmetrics
from rexmon.alarm_worker import AlarmWorker
from rexmon.config import Config, build_slurper, parse_shard
from rexmon.episodes import Episode
from rexmon.heartbeat import SignsOfLife
from rexmon.memory import Trimmer
from rexmon.runner import HEALTH, Runner, RunResult
from rexmon.scheduling import (
    LagRecordingExecutor,
    PhaseTrigger,
    lag_metric,
    phase,
    phase_offset,
    select_slurpers,
    shard_of,
)
from rexmon.writer_log import Totals, WriteLog
from rrd.archive import Archive, SeriesSpec, Update, WriteResult
from rrd.names import make_id
from slurpers.api import Slurper

log = logging.getLogger(__name__)
#: how often rrdcached is made to write the files updated since the last time, so rexmon's own update
#: journal (rrd/journal.py) can be emptied; like rrdcached's -w, it bounds the work a restart replays
JOURNAL_SYNC_SECONDS = 300.0
#: results waiting for the writer at most: this many, or two rounds of every slurper if more
QUEUE_MIN = 10_000
#: how long a slurper's thread waits for room in a full queue before its result is dropped (counted)
QUEUE_WAIT = 1.0
#: scheduling lags kept for inspection (a rolling window: nothing grows with the number of runs)
LAG_WINDOW = 100_000
Clock = Callable[[], float]


class SchedulerEvent(RunResult):
    """A run the scheduler missed or skipped: archived as a failed run, logged in an episode."""


class Service:
    """The long-running collector: ``rexmon run``."""

    def __init__(
        self,
        config: Config,
        *,
        slurpers: Sequence[Slurper[Any]] | None = None,
        alarms: AlarmSink | Callable[[], AlarmSink] | None = None,
        shard: str | None = None,
        clock: Clock = time.time,
        flush_interval: float = 1.0,
        queue_size: int | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        if slurpers is None:
            slurpers = [build_slurper(s, config.registry) for s in select_slurpers(config, shard)]
        spec = shard if shard is not None else config.scheduler.shard
        #: each collector of a scale-out has its own health series (rexmon/scheduler.shard2of3.lag)
        self.lag_metric = lag_metric(spec)
        self._health_part = "" if not spec else "shard{}of{}.".format(*parse_shard(spec))
        self.runner = Runner(config, slurpers, clock)
        self.life = SignsOfLife.of(config, spec or None)  # the database heartbeat, systemd's watchdog
        self.archive = Archive(
            config.rrd_dir, config.archive.step, config.rrdcached, journal_dir=config.state_dir / "journal",
            retention=config.retention(),
        )  # fmt: skip
        self.sync_interval = JOURNAL_SYNC_SECONDS
        #: the alarm side in threads of its own (None: this collector hands values to no one)
        self.alarms = None if alarms is None else AlarmWorker(alarms, clock)
        self.flush_interval = flush_interval
        size = queue_size or max(QUEUE_MIN, 2 * len(slurpers))
        self._queue: queue.Queue[RunResult] = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._life: threading.Thread | None = None
        self._round_done = threading.Event()
        self._executor = LagRecordingExecutor(config.scheduler.workers)
        self.scheduler = BackgroundScheduler(
            executors={"default": self._executor},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone="UTC",
        )
        self.scheduler.add_listener(
            self._on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED | EVENT_JOB_ERROR
        )
        self.lags: deque[float] = deque(maxlen=LAG_WINDOW)
        self.totals = Totals()
        self._totals_lock = threading.Lock()
        #: results dropped because the writer's queue was full (since start, and since the last round)
        self.dropped = 0
        self._dropped_round = 0
        self._full = Episode(log)
        self._errors = WriteLog(log)
        self._alarms_dropped = 0
        #: runs the scheduler missed or skipped (overloaded, or a run beyond its interval)
        self._late = Episode(log)
        self._late_round = 0

    @property
    def alarm_failures(self) -> int:
        """Alarm steps that failed since start (the database away or locked)."""
        return 0 if self.alarms is None else self.alarms.failures

    # -- one pass (cron style) ---------------------------------------------------------------------
    def run_once(self) -> list[RunResult]:
        """Run every slurper once (in parallel, each within its timeout), archive, evaluate alarms."""
        results: list[RunResult] = []
        lock = threading.Lock()
        sem = threading.Semaphore(self.config.scheduler.workers)
        threads = []
        for s in self.runner.slurpers.values():
            s.start()

            def work(s: Slurper[Any] = s) -> None:
                with sem:
                    r = self.runner.run(s)
                with lock:
                    results.append(r)

            # daemon threads: a slurper stuck in pure Python must not keep the process alive
            t = threading.Thread(target=work, name=f"slurp-{s.id}", daemon=True)
            t.start()
            threads.append((s, t))
        for s, t in threads:
            t.join(s.timeout + 5.0)
            if t.is_alive():
                results.append(
                    RunResult(
                        s.id,
                        self.clock(),
                        s.timeout,
                        error=f"slurper {s.id} did not return within its timeout of {s.timeout:g} s",
                    )
                )
        with lock:
            done = list(results)
        self._write(done)
        self.life.round(self.clock())
        if self.alarms is not None:
            self.alarms.run_once()
        for s in self.runner.slurpers.values():
            _safe_close(s)
        self.archive.close()
        self.life.close()
        return done

    # -- daemon -----------------------------------------------------------------------------------
    def start(self) -> None:
        # APScheduler logs every run (INFO) and every missed or skipped one (WARNING); the service counts
        # those in episodes instead, so a busy collector's log stays readable
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
        jitter = self.config.scheduler.jitter
        for s in self.runner.slurpers.values():
            s.start()
            self.scheduler.add_job(
                self._job,
                # every run at its phase + k x interval plus a fresh jitter: the mean period is the interval
                PhaseTrigger(s.interval, phase_offset(s.id, s.interval), jitter),
                args=(s.id,),
                id=s.id,
                name=s.id,
                misfire_grace_time=max(1, int(s.interval)),
            )
        if self.alarms is not None:
            self.alarms.start()
        self._writer = threading.Thread(target=self._write_loop, name="rexmon-writer", daemon=True)
        self._writer.start()
        self._life = threading.Thread(target=self._life_loop, name="rexmon-life", daemon=True)
        self._life.start()
        self.scheduler.start()
        self.life.ready()
        log.info("rexmon running %d slurpers", len(self.runner.slurpers))

    def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        self._stop.set()
        if self._writer is not None:
            self._writer.join(30)
        if self._life is not None:
            self._life.join(30)
        for s in self.runner.slurpers.values():
            _safe_close(s)
        if self.alarms is not None:
            self.alarms.stop()
        self.archive.close()
        self.life.close()

    def _job(self, slurper_id: str) -> None:
        scheduled = self._executor.scheduled_time(slurper_id)
        lag = None if scheduled is None else max(0.0, time.time() - scheduled)
        self._enqueue(self.runner.run(self.runner.slurpers[slurper_id], lag), QUEUE_WAIT)

    def _enqueue(self, result: RunResult, wait: float) -> None:
        """Hand a result to the writer; if the queue stays full ``wait`` s, drop it (counted, said once)."""
        try:
            if wait > 0:
                self._queue.put(result, timeout=wait)
            else:
                self._queue.put_nowait(result)
        except queue.Full:
            with self._totals_lock:
                self.dropped += 1
                self._dropped_round += 1
            self._full.fail(
                "writer: its queue is full (%d results: the archive is slower than the slurpers); "
                "results are dropped until it catches up (slurpers with a checkpoint read them again)",
                self._queue.maxsize, items=1,
            )  # fmt: skip

    def _on_event(self, event: JobEvent) -> None:
        sid = event.job_id
        if sid not in self.runner.slurpers:
            return
        if event.code == EVENT_JOB_MAX_INSTANCES:
            msg = f"slurper {sid} is still running from its previous run (beyond its timeout?); run skipped"
        elif event.code == EVENT_JOB_MISSED:
            msg = f"slurper {sid} missed its run time (scheduler overloaded?)"
        else:
            msg = f"slurper {sid} job failed: {getattr(event, 'exception', '')}"
        with self._totals_lock:
            self._late_round += 1
        self._late.fail(
            "scheduler: %s; such runs are counted, not logged one by one, until it keeps up", msg,
            items=1, level=logging.WARNING,
        )  # fmt: skip
        result = SchedulerEvent(sid, self.clock(), 0.0, error=msg)
        self._enqueue(result, 0.0)  # the scheduler's thread never waits

    def _write_loop(self) -> None:
        next_sync = time.monotonic() + self.sync_interval
        while not self._stop.is_set() or not self._queue.empty():
            if time.monotonic() >= next_sync:
                self.archive.sync()
                next_sync = time.monotonic() + self.sync_interval
            batch: list[RunResult] = []
            deadline = time.monotonic() + self.flush_interval
            while time.monotonic() < deadline:
                try:
                    batch.append(self._queue.get(timeout=max(0.01, deadline - time.monotonic())))
                except queue.Empty:
                    if self._stop.is_set():
                        break
            try:
                self._write(batch)
            except Exception:  # the writer must survive anything a batch throws at it
                log.exception("writer round failed")
            self.life.ping(self._queue.qsize())  # WATCHDOG=1 and /metrics gauges from the writer itself
            self._round_done.set()  # the database heartbeat: see _life_loop

    def _life_loop(self) -> None:
        """The database heartbeat after each writer round, in a thread of its own: a locked or unreachable
        database delays it, never the archive nor systemd's WATCHDOG=1 (the writer pings, so a writer that
        is stuck sends none and systemd restarts it). It also trims the C heap (rexmon/memory.py)."""
        trimmer = Trimmer()  # the C heap's free pages back to the system, once a minute
        while not self._stop.is_set() or self._round_done.is_set():
            if self._round_done.wait(1.0):
                self._round_done.clear()
                self.life.round(time.time(), self._queue.qsize())
            trimmer.tick(time.monotonic())

    # -- the one-way flow: archive, then checkpoints, then alarms -------------------------------------
    def _write(self, results: Sequence[RunResult]) -> WriteResult:
        updates = [u for r in results for u in r.updates]
        updates += self.runner.health_updates(results)
        updates += self._health(results)
        started = time.monotonic()
        res = self.archive.write(updates) if updates else WriteResult()
        selfmetrics.record_write(time.monotonic() - started, res.written, res.skipped_old, len(res.errors))
        selfmetrics.record_backlog(res.held, res.refused)
        with self._totals_lock:
            self.totals.add(res)
        self._errors.archive(res, len(updates))
        failed = {mid for mid, _ in res.errors}
        for r in results:
            if r.error:
                if not isinstance(r, SchedulerEvent):  # those are counted in their episode
                    self._errors.run_failed(r.slurper_id, r.error)
                continue
            self._errors.run_ok(r.slurper_id)
            if any(u.metric_id in failed for u in r.updates):
                continue  # not committed: the next run fetches this window again
            if r.new_state is not None:
                self.runner.checkpoints.save(r.slurper_id, r.new_state)
            slurper = self.runner.slurpers.get(r.slurper_id)
            if slurper is not None and r.ctx is not None:
                try:
                    slurper.on_archived(r.ctx)
                except Exception:
                    log.exception("slurper %s: on_archived failed", r.slurper_id)
        if self.alarms is not None:  # a collector that does not evaluate has the inbox as its sink
            obs: list[Observation] = [o for r in results for o in r.observations if o.metric_id not in failed]
            self.alarms.submit(obs)
        return res

    def _health(self, results: Sequence[RunResult]) -> list[Update]:
        """Scheduling lag, the writer's queue and drops, the alarms' backlog and drops (rexmon/...)."""
        now = int(self.clock())
        g = SeriesSpec("GAUGE", int(max(120, 2 * self.config.archive.step)), 0, None)
        out = []
        lags = [r.lag for r in results if r.lag is not None]
        if lags:
            self.lags.extend(lags)
            out.append(Update(self.lag_metric, now, max(lags), g))
        with self._totals_lock:
            dropped, self._dropped_round = self._dropped_round, 0
        if not dropped and self._full.active:
            self._full.ok("writer: caught up after %(seconds).0f s; %(items)d result(s) were dropped")
        with self._totals_lock:
            late, self._late_round = self._late_round, 0
        if not late and self._late.active:
            self._late.ok(
                "scheduler: on time again after %(seconds).0f s; %(items)d run(s) missed or skipped"
            )
        out.append(Update(self._health_id("writer", "queue"), now, self._queue.qsize(), g))
        out.append(Update(self._health_id("writer", "dropped"), now, dropped, g))
        if self.alarms is not None:
            total = self.alarms.dropped
            dropped, self._alarms_dropped = total - self._alarms_dropped, total
            out.append(Update(self._health_id("alarms", "backlog"), now, self.alarms.backlog, g))
            out.append(Update(self._health_id("alarms", "dropped"), now, dropped, g))
        return out

    def _health_id(self, part: str, what: str) -> str:
        """``rexmon/writer.queue``, or ``rexmon/writer.shard1of3.queue`` on one shard of a scale-out."""
        return make_id(HEALTH, f"{part}.{self._health_part}{what}")


def _safe_close(s: Slurper[Any]) -> None:
    try:
        s.close()
    except Exception:
        log.exception("closing slurper %s failed", s.id)


__all__ = ["HEALTH", "RunResult", "Runner", "Service", "lag_metric", "phase", "select_slurpers", "shard_of"]

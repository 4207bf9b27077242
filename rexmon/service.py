"""The only place that joins the pieces: scheduler -> slurpers -> archive -> alarms.

Slurpers run in APScheduler's thread pool and put their results on a queue; one writer thread drains the
queue in batches into the archive (through rrdcached when configured), commits slurper checkpoints
after their values are archived, archives rexmon's own health metrics, and hands the archived values to
the alarm side. Nothing flows back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler

from alarms.observation import AlarmSink
from rexmon.config import Config, build_slurper
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
from rrd.archive import Archive, SeriesSpec, Update, WriteResult
from slurpers.api import Slurper

log = logging.getLogger(__name__)
#: how often rrdcached is made to write the files updated since the last time, so rexmon's own update
#: journal (rrd/journal.py) can be emptied; like rrdcached's -w, it bounds the work a restart replays
JOURNAL_SYNC_SECONDS = 300.0
Clock = Callable[[], float]


class Service:
    """The long-running collector: ``rexmon run``."""

    def __init__(
        self,
        config: Config,
        *,
        slurpers: Sequence[Slurper] | None = None,
        alarms: AlarmSink | None = None,
        shard: str | None = None,
        clock: Clock = time.time,
        flush_interval: float = 1.0,
    ) -> None:
        self.config = config
        self.clock = clock
        if slurpers is None:
            slurpers = [build_slurper(s, config.registry) for s in select_slurpers(config, shard)]
        spec = shard if shard is not None else config.scheduler.shard
        #: each collector of a scale-out has its own lag series (rexmon/scheduler.shard2of3.lag)
        self.lag_metric = lag_metric(spec)
        self.runner = Runner(config, slurpers, clock)
        self.archive = Archive(
            config.rrd_dir, config.archive.step, config.rrdcached, journal_dir=config.state_dir / "journal",
            retention=config.retention(),
        )  # fmt: skip
        self.sync_interval = JOURNAL_SYNC_SECONDS
        self.alarms = alarms
        self.flush_interval = flush_interval
        self._queue: queue.Queue[RunResult] = queue.Queue()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._executor = LagRecordingExecutor(config.scheduler.workers)
        self.scheduler = BackgroundScheduler(
            executors={"default": self._executor},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone="UTC",
        )
        self.scheduler.add_listener(
            self._on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED | EVENT_JOB_ERROR
        )
        self.lags: list[float] = []
        self.alarm_failures = 0
        self._alarms_ok = True
        self.totals = WriteResult()
        self._totals_lock = threading.Lock()

    # -- one pass (cron style) ---------------------------------------------------------------------
    def run_once(self) -> list[RunResult]:
        """Run every slurper once (in parallel, each within its timeout), archive, evaluate alarms."""
        results: list[RunResult] = []
        lock = threading.Lock()
        sem = threading.Semaphore(self.config.scheduler.workers)
        threads = []
        for s in self.runner.slurpers.values():
            s.start()

            def work(s: Slurper = s) -> None:
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
        if self.alarms is not None:
            self._alarms_do("tick", lambda: self.alarms.tick(self.clock()))  # type: ignore[union-attr]
            self._alarms_do("close", self.alarms.close)
        for s in self.runner.slurpers.values():
            _safe_close(s)
        self.archive.close()
        return done

    # -- daemon -----------------------------------------------------------------------------------
    def start(self) -> None:
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
        self._writer = threading.Thread(target=self._write_loop, name="rexmon-writer", daemon=True)
        self._writer.start()
        self.scheduler.start()
        log.info("rexmon running %d slurpers", len(self.runner.slurpers))

    def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        self._stop.set()
        if self._writer is not None:
            self._writer.join(30)
        for s in self.runner.slurpers.values():
            _safe_close(s)
        if self.alarms is not None:
            self.alarms.close()
        self.archive.close()

    def _job(self, slurper_id: str) -> None:
        scheduled = self._executor.scheduled_time(slurper_id)
        lag = None if scheduled is None else max(0.0, time.time() - scheduled)
        self._queue.put(self.runner.run(self.runner.slurpers[slurper_id], lag))

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
        log.warning("%s", msg)
        self._queue.put(RunResult(sid, self.clock(), 0.0, error=msg))

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
                if self.alarms is not None:
                    self._alarms_do("tick", lambda: self.alarms.tick(self.clock()))  # type: ignore[union-attr]
            except Exception:  # the writer must survive anything a batch throws at it
                log.exception("writer round failed")

    # -- the one-way flow: archive, then checkpoints, then alarms -------------------------------------
    def _write(self, results: Sequence[RunResult]) -> WriteResult:
        updates = [u for r in results for u in r.updates]
        updates += self.runner.health_updates(results)
        lags = [r.lag for r in results if r.lag is not None]
        if lags:
            self.lags.extend(lags)
            g = SeriesSpec("GAUGE", int(max(120, 2 * self.config.archive.step)), 0, None)
            updates.append(Update(self.lag_metric, int(self.clock()), max(lags), g))
        res = self.archive.write(updates) if updates else WriteResult()
        with self._totals_lock:
            self.totals.written += res.written
            self.totals.skipped_old += res.skipped_old
            self.totals.created += res.created
            self.totals.errors.extend(res.errors[:100])
        for mid, msg in res.errors:
            log.error("archive: %s: %s", mid, msg)
        failed = {mid for mid, _ in res.errors}
        for r in results:
            if r.error:
                log.error("%s", r.error)
                continue
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
            obs = [o for r in results for o in r.observations if o.metric_id not in failed]
            self._alarms_do("evaluation", lambda: self.alarms.observe(obs, self.clock()))  # type: ignore[union-attr]
        return res

    def _alarms_do(self, what: str, call: Callable[[], None]) -> bool:
        """Run one alarm step; if the database is away, say so once, keep archiving, and recover later.

        Values are archived before this point, so nothing is lost; alarms judge the values that arrive
        once the database answers again.
        """
        try:
            call()
        except Exception as exc:
            self.alarm_failures += 1
            if self._alarms_ok:
                first = (str(exc).splitlines() or [""])[0][:300]
                log.error(
                    "alarms: %s failed (%s: %s); values are still archived, alarms resume when the "
                    "database answers again", what, type(exc).__name__, first,
                )  # fmt: skip
            self._alarms_ok = False
            return False
        if not self._alarms_ok:
            log.warning("alarms: the database answers again; evaluation resumed")
        self._alarms_ok = True
        return True


def _safe_close(s: Slurper) -> None:
    try:
        s.close()
    except Exception:
        log.exception("closing slurper %s failed", s.id)


__all__ = ["HEALTH", "RunResult", "Runner", "Service", "lag_metric", "phase", "select_slurpers", "shard_of"]

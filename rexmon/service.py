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
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from alarms.observation import AlarmSink, Observation
from rexmon.absent import AbsentFill
from rexmon.config import Config, SlurperConfig, build_slurper, parse_shard
from rexmon.state import CheckpointStore
from rrd.archive import Archive, SeriesSpec, Update, WriteResult
from rrd.names import clean_part, make_id
from slurpers.api import CollectContext, MetricSpec, Reading, Slurper, SlurperError

log = logging.getLogger(__name__)
HEALTH = "rexmon"
#: how often rrdcached is made to write the files updated since the last time, so rexmon's own update
#: journal (rrd/journal.py) can be emptied; like rrdcached's -w, it bounds the work a restart replays
JOURNAL_SYNC_SECONDS = 300.0
Clock = Callable[[], float]


@dataclass
class RunResult:
    """What one slurper run produced, ready for the writer."""

    slurper_id: str
    started: float
    duration: float
    updates: list[Update] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    error: str | None = None
    new_state: dict[str, Any] | None = None
    lag: float | None = None
    ctx: CollectContext | None = None


def shard_of(slurper_id: str, shards: int) -> int:
    """Deterministic shard (1-based) of a slurper id: the same on every host and every release."""
    return zlib.crc32(slurper_id.encode()) % shards + 1


def phase(slurper_id: str, interval: float, now: float) -> float:
    """Seconds until a slurper's first run: a fixed phase per id, so 10,000 slurpers spread evenly
    over their interval (instead of all firing at start-up) and keep their phase across restarts."""
    offset = (zlib.crc32(slurper_id.encode()) % 10_000) / 10_000 * interval
    return (offset - now) % interval


def lag_metric(shard: str | None) -> str:
    """``rexmon/scheduler.lag``, or ``rexmon/scheduler.shard<I>of<N>.lag`` for one shard of a scale-out."""
    if not shard:
        return make_id(HEALTH, "scheduler.lag")
    i, n = parse_shard(shard)
    return make_id(HEALTH, f"scheduler.shard{i}of{n}.lag")


def select_slurpers(config: Config, shard: str | None = None) -> list[SlurperConfig]:
    chosen = [s for s in config.slurpers if s.enabled]
    spec = shard if shard is not None else config.scheduler.shard
    if spec:
        i, n = parse_shard(spec)
        chosen = [s for s in chosen if shard_of(s.id, n) == i]
    return chosen


class Runner:
    """Runs slurpers and turns their readings into archive updates (no scheduling here)."""

    def __init__(
        self, config: Config, slurpers: Sequence[Slurper], clock: Clock = time.time, *, dry_run: bool = False
    ) -> None:
        self.config = config
        self.clock = clock
        self.slurpers = {s.id: s for s in slurpers}
        self.checkpoints = CheckpointStore(config.state_dir)
        self.absent = AbsentFill(config.state_dir / "absent", read_only=dry_run)
        self._specs: dict[tuple[str, str], tuple[str, SeriesSpec, MetricSpec]] = {}

    def run(self, slurper: Slurper, lag: float | None = None) -> RunResult:
        started = self.clock()
        ctx = CollectContext(now=started, timeout=slurper.timeout, state=self.checkpoints.load(slurper.id))
        result = RunResult(slurper.id, started, 0.0, lag=lag)
        try:
            readings = list(slurper.collect(ctx))
            self._convert(slurper, readings, started, result)
            result.new_state = ctx.new_state
            result.ctx = ctx
        except SlurperError as exc:
            result.error = str(exc)
        except Exception as exc:  # a buggy plugin is isolated, logged with its traceback
            log.exception("slurper %s crashed", slurper.id)
            result.error = f"internal error in slurper {slurper.id}: {type(exc).__name__}: {exc}"
        result.duration = self.clock() - started
        if result.error:
            result.updates.clear()
            result.observations.clear()
        return result

    def _convert(self, slurper: Slurper, readings: list[Reading], now: float, result: RunResult) -> None:
        default_t = int(now)
        counted: set[str] = set()
        if any(r.time is not None for r in readings if isinstance(r, Reading)):
            # back-dated series (Netbeam, Munin epoch:value) reach the archive oldest first
            readings = sorted(readings, key=lambda r: default_t if r.time is None else r.time)
        for r in readings:
            if not isinstance(r, Reading):
                raise SlurperError(f"slurper {slurper.id} returned {type(r).__name__}, not a Reading")
            if not isinstance(r.metric, str) or clean_part(r.metric) != r.metric:
                raise SlurperError(
                    f"slurper {slurper.id} produced the metric name {r.metric!r:.80}, which is not allowed "
                    "(letters, digits, '.', '_', '-'; not starting with '.', no '..'); nothing archived"
                )
            spec = self._add(slurper, r.metric, default_t if r.time is None else int(r.time), r.value, result)
            if spec.when_absent is not None:
                counted.add(r.metric)
        # counts that vanished from the source (a user with no jobs left) are 0, not stale
        value_of = lambda name: self._spec(slurper, name)[2].when_absent  # noqa: E731
        for name, value in self.absent.fill(slurper.id, counted, value_of, now):
            self._add(slurper, name, default_t, value, result)

    def _add(self, slurper: Slurper, name: str, t: int, value: float | None, result: RunResult) -> MetricSpec:
        metric_id, series, spec = self._spec(slurper, name)
        result.updates.append(Update(metric_id, t, value, series))
        result.observations.append(
            Observation(metric_id, t, value, spec.ds_type, slurper.interval, spec.warning, spec.critical)
        )
        return spec

    def _spec(self, slurper: Slurper, name: str) -> tuple[str, SeriesSpec, MetricSpec]:
        key = (slurper.id, name)
        hit = self._specs.get(key)
        if hit is None:
            spec = slurper.spec_for(name)
            heartbeat = int(max(2 * slurper.interval, self.config.archive.step))
            series = SeriesSpec(spec.ds_type, heartbeat, spec.min, spec.max)
            hit = (make_id(slurper.id, name), series, spec)
            if not _dynamic_config(slurper):
                self._specs[key] = hit
        return hit

    def health_updates(self, results: Sequence[RunResult]) -> list[Update]:
        out = []
        for r in results:
            t = int(r.started)
            hb = int(max(2 * self.slurpers[r.slurper_id].interval, self.config.archive.step))
            g = SeriesSpec("GAUGE", hb, 0, None)
            out.append(Update(make_id(HEALTH, f"{r.slurper_id}.duration"), t, round(r.duration, 6), g))
            out.append(Update(make_id(HEALTH, f"{r.slurper_id}.errors"), t, 1 if r.error else 0, g))
        return out


def _dynamic_config(slurper: Slurper) -> bool:
    # a Munin plugin's config can change between runs (min/max/type); do not cache its specs
    return slurper.type_name == "munin"


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
            slurpers = [build_slurper(s) for s in select_slurpers(config, shard)]
        spec = shard if shard is not None else config.scheduler.shard
        #: each collector of a scale-out has its own lag series (rexmon/scheduler.shard2of3.lag)
        self.lag_metric = lag_metric(spec)
        self.runner = Runner(config, slurpers, clock)
        self.archive = Archive(
            config.rrd_dir, config.archive.step, config.rrdcached, journal_dir=config.state_dir / "journal"
        )
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
        now = time.time()
        jitter = self.config.scheduler.jitter
        for s in self.runner.slurpers.values():
            s.start()
            first = now + phase(s.id, s.interval, now)
            self.scheduler.add_job(
                self._job,
                IntervalTrigger(seconds=s.interval, jitter=jitter or None, timezone="UTC"),
                args=(s.id,),
                id=s.id,
                name=s.id,
                next_run_time=_utc(first),
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


def _utc(ts: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


class LagRecordingExecutor(ThreadPoolExecutor):  # type: ignore[misc]
    """APScheduler's thread pool, remembering each job's scheduled run time so the job can measure lag."""

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers)
        self._scheduled: dict[str, float] = {}

    def submit_job(self, job: Any, run_times: list[Any]) -> None:
        from apscheduler.executors.base import MaxInstancesReachedError

        with self._lock:  # the base class' RLock: the job cannot start before its time is recorded
            if self._instances[job.id] >= job.max_instances:
                raise MaxInstancesReachedError(job)
            self._scheduled[job.id] = run_times[-1].timestamp()
            super().submit_job(job, run_times)

    def scheduled_time(self, job_id: str) -> float | None:
        return self._scheduled.get(job_id)

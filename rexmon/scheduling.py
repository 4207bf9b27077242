"""When slurpers run: shards, phases, the trigger that keeps each slurper on its phase, and the APScheduler
executor that records each run's scheduled time."""

from __future__ import annotations

import math
import random
import zlib
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.triggers.base import BaseTrigger

from rexmon.config import Config, SlurperConfig, parse_shard
from rexmon.runner import HEALTH
from rrd.names import make_id


def shard_of(slurper_id: str, shards: int) -> int:
    """Deterministic shard (1-based) of a slurper id: the same on every host and every release."""
    return zlib.crc32(slurper_id.encode()) % shards + 1


def phase_offset(slurper_id: str, interval: float) -> float:
    """A slurper's fixed phase in [0, interval): its runs fall at ``offset + k x interval`` (epoch seconds),
    so 10,000 slurpers spread evenly over their interval and keep their phase across restarts."""
    return (zlib.crc32(slurper_id.encode()) % 10_000) / 10_000 * interval


def phase(slurper_id: str, interval: float, now: float) -> float:
    """Seconds from ``now`` until a slurper's next phase point."""
    return (phase_offset(slurper_id, interval) - now) % interval


class PhaseTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires at ``offset + k x interval`` plus a fresh random delay in [0, jitter] for every run.

    APScheduler's own IntervalTrigger computes each run from the previous, jittered one, so the delays
    add up: a 10 s slurper with jitter 5 ran every 12.5 s on average. Here each run is placed from the
    phase grid, so the mean period is the interval whatever the jitter. The jitter is held to half the
    interval so runs keep their order and stay at least half an interval apart.
    """

    #: runs drift by float rounding and microsecond datetimes; a fire time this close to a grid point
    #: belongs to it
    _SLACK = 1e-3

    def __init__(self, interval: float, offset: float, jitter: float = 0.0, rng: random.Random | None = None):
        if not (math.isfinite(interval) and interval > 0):
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        self.interval = float(interval)
        self.offset = float(offset) % self.interval
        self.jitter = min(max(float(jitter), 0.0), self.interval / 2)
        self._rng = rng if rng is not None else random.Random()

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if previous_fire_time is None:  # the first run: the next grid point from now
            k = math.ceil((now.timestamp() - self.offset) / self.interval)
        else:  # the grid point after the previous run's own (its jitter is < half an interval)
            prev = previous_fire_time.timestamp()
            k = math.floor((prev - self.offset + self._SLACK) / self.interval) + 1
        base = self.offset + k * self.interval
        return utc(base + self._rng.uniform(0.0, self.jitter))

    def __str__(self) -> str:
        return f"phase[interval={self.interval:g}s, offset={self.offset:g}s, jitter={self.jitter:g}s]"

    def __repr__(self) -> str:
        return f"<PhaseTrigger (interval={self.interval:g}, offset={self.offset:g}, jitter={self.jitter:g})>"


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


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class LagRecordingExecutor(ThreadPoolExecutor):  # type: ignore[misc]
    """APScheduler's thread pool, remembering each job's scheduled run time so the job can measure lag."""

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers)
        self._scheduled: dict[str, float] = {}

    def _do_submit_job(self, job: Any, run_times: list[Any]) -> None:
        # the hook executors implement (executors/base.py): called once the instance limit is checked
        # and before the job is handed to the pool, so the job cannot start before its time is recorded
        self._scheduled[job.id] = run_times[-1].timestamp()
        super()._do_submit_job(job, run_times)

    def scheduled_time(self, job_id: str) -> float | None:
        return self._scheduled.get(job_id)

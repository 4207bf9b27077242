"""When slurpers run: shards, phases and the APScheduler executor that records each run's scheduled time."""

from __future__ import annotations

import zlib
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor

from rexmon.config import Config, SlurperConfig, parse_shard
from rexmon.runner import HEALTH
from rrd.names import make_id


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


def utc(ts: float) -> Any:
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

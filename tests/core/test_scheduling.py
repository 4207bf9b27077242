"""The scheduler keeps each slurper on its phase: runs at ``phase + k x interval`` plus a fresh jitter."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from rexmon.scheduling import PhaseTrigger, phase_offset, utc

T0 = 1_780_000_000.0  # a fixed start, epoch seconds


def fire_times(trigger: BaseTrigger, runs: int, run_seconds: float = 0.7) -> list[float]:
    """The fire times APScheduler would use: each from the previous one, ``now`` just after a run."""
    now = utc(T0)
    prev: datetime | None = None
    out = []
    for _ in range(runs):
        fire = trigger.get_next_fire_time(prev, now)
        assert fire is not None
        out.append(fire.timestamp())
        prev, now = fire, utc(fire.timestamp() + run_seconds)
    return out


def mean_period(times: list[float]) -> float:
    return (times[-1] - times[0]) / (len(times) - 1)


def test_a_10_s_slurper_with_jitter_5_runs_every_10_s_on_average() -> None:
    offset = phase_offset("pool", 10.0)
    times = fire_times(PhaseTrigger(10.0, offset, 5.0, random.Random(7)), 5000)
    assert mean_period(times) == pytest.approx(10.0, abs=0.002)
    # every run in [phase + k x interval, + jitter], one per grid point, none skipped
    ks = [round((t - offset - 2.5) / 10.0) for t in times]
    assert ks == list(range(ks[0], ks[0] + len(ks)))
    delays = [t - (offset + k * 10.0) for t, k in zip(times, ks, strict=True)]
    assert min(delays) >= -1e-6 and max(delays) <= 5.0 + 1e-6
    # the jitter is fresh per run, not one fixed delay: it spreads over the whole window
    assert min(delays) < 0.5 and max(delays) > 4.5


def test_apschedulers_interval_trigger_drifts_by_the_mean_jitter() -> None:
    """What this trigger replaces: each run from the previous jittered one, so the delays add up."""
    random.seed(7)
    times = fire_times(IntervalTrigger(seconds=10, jitter=5, timezone="UTC", start_date=utc(T0)), 5000)
    assert mean_period(times) > 12.0


@pytest.mark.parametrize(
    ("interval", "jitter", "effective"),
    [(10.0, 0.0, 0.0), (60.0, 5.0, 5.0), (4.0, 5.0, 2.0), (1.0, 3600.0, 0.5)],
)
def test_jitter_is_held_to_half_the_interval(interval: float, jitter: float, effective: float) -> None:
    trigger = PhaseTrigger(interval, 0.3, jitter, random.Random(1))
    assert trigger.jitter == effective
    times = fire_times(trigger, 400, run_seconds=0.0)
    assert mean_period(times) == pytest.approx(interval, abs=interval * 0.01)
    assert all(b - a >= interval - effective - 1e-6 for a, b in zip(times, times[1:], strict=False))


def test_first_run_is_the_next_phase_point_and_the_phase_survives_a_restart() -> None:
    offset = phase_offset("node7-df", 300.0)
    first = PhaseTrigger(300.0, offset).get_next_fire_time(None, utc(T0))
    assert first is not None and first.timestamp() >= T0
    assert (first.timestamp() - offset) % 300.0 == pytest.approx(0.0, abs=1e-5)
    # a restart an hour later lands on the same grid
    later = PhaseTrigger(300.0, offset).get_next_fire_time(None, utc(T0 + 3600.5))
    assert later is not None and (later.timestamp() - first.timestamp()) % 300.0 == pytest.approx(
        0.0, abs=1e-5
    )


def test_a_run_late_by_several_intervals_resumes_on_the_grid() -> None:
    """After the scheduler was blocked, the next runs are still grid points (APScheduler coalesces)."""
    trigger = PhaseTrigger(10.0, 3.0, 0.0)
    nxt = trigger.get_next_fire_time(utc(T0 + 3.0), utc(T0 + 55.0))
    assert nxt is not None and nxt.timestamp() == pytest.approx(T0 + 13.0)


@pytest.mark.parametrize("interval", [0.0, -1.0, float("inf"), float("nan")])
def test_a_bad_interval_is_refused(interval: float) -> None:
    with pytest.raises(ValueError, match="interval must be a positive number"):
        PhaseTrigger(interval, 0.0)


def test_a_real_scheduler_runs_on_the_grid_and_each_run_knows_its_scheduled_time() -> None:
    """APScheduler with the trigger and the executor: every run's recorded time is its own grid point."""
    import threading
    import time

    from apscheduler.schedulers.background import BackgroundScheduler

    from rexmon.scheduling import LagRecordingExecutor

    executor = LagRecordingExecutor(2)
    scheduler = BackgroundScheduler(executors={"default": executor}, timezone="UTC")
    seen: list[tuple[float, float]] = []
    done = threading.Event()

    def job() -> None:
        scheduled = executor.scheduled_time("j")
        assert scheduled is not None
        seen.append((scheduled, time.time()))
        if len(seen) >= 3:
            done.set()

    offset = phase_offset("j", 1.0)
    scheduler.add_job(job, PhaseTrigger(1.0, offset, 0.2), id="j", max_instances=1, coalesce=True)
    scheduler.start()
    try:
        assert done.wait(30), "three runs within 30 s"
    finally:
        scheduler.shutdown(wait=True)
    for scheduled, started in seen:
        base = offset + round(scheduled - offset - 0.1)  # the grid point this run belongs to
        assert 0 <= scheduled - base <= 0.2 + 1e-6
        assert 0 <= started - scheduled < 1.0  # the run saw its own time, not the previous or next one
    assert len({round(s - offset - 0.1) for s, _ in seen}) == len(seen)  # one run per grid point

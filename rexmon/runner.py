"""Runs one slurper once and turns its readings into archive updates and alarm observations.

No scheduling and no writing here: the scheduler (rexmon/scheduling.py) decides when, the service's
writer (rexmon/service.py) archives what a run produced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alarms.observation import Observation
from rexmon.absent import AbsentFill
from rexmon.config import Config
from rexmon.state import CheckpointStore
from rrd.archive import SeriesSpec, Update
from rrd.names import clean_part, make_id
from slurpers.api import CollectContext, MetricSpec, Reading, Slurper, SlurperError

log = logging.getLogger(__name__)
HEALTH = "rexmon"
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
            Observation(
                metric_id,
                t,
                value,
                spec.ds_type,
                slurper.interval,
                spec.warning,
                spec.critical,
                unit=spec.unit,
                base=spec.base,
                label=spec.label,
                graph=spec.graph,
            )
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

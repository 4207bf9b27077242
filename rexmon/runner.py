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
from rexmon import selfmetrics
from rexmon.absent import AbsentFill
from rexmon.config import DEFAULT_MAX_METRICS, Config
from rexmon.state import CheckpointStore
from rrd.archive import SeriesSpec, Update
from rrd.names import clean_part, make_id
from slurpers.api import (
    DEFAULT_MAX_OUTPUT,
    CollectContext,
    MetricSpec,
    Reading,
    Slurper,
    SlurperError,
    output_limit,
)

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
        self,
        config: Config,
        slurpers: Sequence[Slurper[Any]],
        clock: Clock = time.time,
        *,
        dry_run: bool = False,
    ) -> None:
        self.config = config
        self.clock = clock
        self.slurpers = {s.id: s for s in slurpers}
        self.checkpoints = CheckpointStore(config.state_dir)
        self.absent = AbsentFill(config.state_dir / "absent", read_only=dry_run)
        configured = {sc.id: sc for sc in config.slurpers}
        #: per slurper: bytes one command may print, distinct metric names it may produce
        self.limits = {
            s.id: (
                (configured[s.id].max_output, configured[s.id].max_metrics)
                if s.id in configured
                else (DEFAULT_MAX_OUTPUT, DEFAULT_MAX_METRICS)
            )
            for s in slurpers
        }
        #: per slurper: the spec generation the cache was filled at, and name -> (id, series, spec)
        self._specs: dict[str, tuple[int, dict[str, tuple[str, SeriesSpec, MetricSpec]]]] = {}
        #: per slurper: the metric names archived since start (bounded by its max_metrics)
        self._names: dict[str, set[str]] = {}

    def run(self, slurper: Slurper[Any], lag: float | None = None) -> RunResult:
        started = self.clock()
        ctx = CollectContext(now=started, timeout=slurper.timeout, state=self.checkpoints.load(slurper.id))
        result = RunResult(slurper.id, started, 0.0, lag=lag)
        max_output, _ = self.limits.get(slurper.id, (DEFAULT_MAX_OUTPUT, DEFAULT_MAX_METRICS))
        try:
            with output_limit(max_output):
                readings = list(slurper.collect(ctx))
            readings, new_names = self._within_max_metrics(slurper, readings)
            self._convert(slurper, readings, started, result)
            self._names.setdefault(slurper.id, set()).update(new_names)  # once the run is good
            result.new_state = ctx.new_state
            result.ctx = ctx
        except SlurperError as exc:
            result.error = str(exc)
        except Exception as exc:  # a buggy plugin is isolated, logged with its traceback
            log.exception("slurper %s crashed", slurper.id)
            result.error = f"internal error in slurper {slurper.id}: {type(exc).__name__}: {exc}"
        result.duration = self.clock() - started
        selfmetrics.record_run(slurper.id, result.duration, bool(result.error), lag)
        if result.error:
            result.updates.clear()
            result.observations.clear()
        return result

    def _convert(self, slurper: Slurper[Any], readings: list[Reading], now: float, result: RunResult) -> None:
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

    def _add(
        self, slurper: Slurper[Any], name: str, t: int, value: float | None, result: RunResult
    ) -> MetricSpec:
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
                cdef=spec.cdef,
                negative=spec.negative,
            )
        )
        return spec

    def _within_max_metrics(
        self, slurper: Slurper[Any], readings: list[Reading]
    ) -> tuple[list[Reading], set[str]]:
        """Hold a slurper to ``max_metrics`` distinct names (each one is an RRD file, kept for good):
        the readings to archive and the names new since start among them.

        A run with more names than that fails; names new since start past the cap are refused (one log
        line per run) while the names already archived go on.
        """
        _, cap = self.limits.get(slurper.id, (DEFAULT_MAX_OUTPUT, DEFAULT_MAX_METRICS))
        names = {r.metric for r in readings if isinstance(r, Reading) and isinstance(r.metric, str)}
        if len(names) > cap:
            raise SlurperError(
                f"slurper {slurper.id} produced {len(names)} metric names, more than its max_metrics = "
                f"{cap}; nothing from this run is archived (raise max_metrics if the names are real)"
            )
        known = self._names.get(slurper.id, set())
        new = names - known
        room = cap - len(known)
        if len(new) <= room:
            return readings, new
        taken = set(sorted(new)[:room])
        log.warning(
            "slurper %s: %d new metric names refused (it has %d names, its max_metrics is %d)",
            slurper.id, len(new) - len(taken), len(known) + len(taken), cap,
        )  # fmt: skip
        refused = new - taken
        return [r for r in readings if not isinstance(r, Reading) or r.metric not in refused], taken

    def _spec(self, slurper: Slurper[Any], name: str) -> tuple[str, SeriesSpec, MetricSpec]:
        cached = self._specs.get(slurper.id)
        if cached is None or cached[0] != slurper.spec_generation:
            # a slurper whose specs follow its source (a Munin plugin's config) says when they change
            cached = self._specs[slurper.id] = (slurper.spec_generation, {})
        hit = cached[1].get(name)
        if hit is None:
            spec = slurper.spec_for(name)
            heartbeat = int(max(2 * slurper.interval, self.config.archive.step))
            plan = self.config.retention(slurper.id)
            series = SeriesSpec(spec.ds_type, heartbeat, spec.min, spec.max, plan)
            hit = cached[1][name] = (make_id(slurper.id, name), series, spec)
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

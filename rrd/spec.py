"""What the archive stores: series specs, updates, write results, fetched series and the RRA plan.

Plain values shared by the writer (:mod:`rrd.writer`) and the reader (:mod:`rrd.reader`); no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rrd.retention import DEFAULT, Retention

DSType = Literal["GAUGE", "COUNTER", "DERIVE", "ABSOLUTE"]
DS_NAME = "value"
CFS = ("AVERAGE", "MIN", "MAX")
DAY = 86400


class ArchiveError(Exception):
    """The archive could not be read or written; the message names the metric and the cause."""


class MetricNotFound(ArchiveError):
    """The archive holds no metric with that id (a 404 on the web, not a failure)."""


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """What the archive needs to create a file: the DS type, its bounds and heartbeat."""

    ds_type: DSType = "GAUGE"
    heartbeat: int = 120
    min: float | None = None
    max: float | None = None
    #: the RRAs of a new file (None: the archive's default plan)
    retention: Retention | None = None


@dataclass(frozen=True, slots=True)
class Update:
    metric_id: str
    time: int
    value: float | None
    spec: SeriesSpec = SeriesSpec()


@dataclass
class WriteResult:
    written: int = 0
    #: older than (or at) the file's last update: skipped, never an error
    skipped_old: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    created: int = 0
    #: kept in memory because the archive or the journal cannot be written; sent when they can again
    held: int = 0
    #: refused because the values held in memory reached their bound (counted, never silent)
    refused: int = 0


@dataclass(frozen=True)
class Series:
    metric_id: str
    start: int
    end: int
    step: int
    cf: str
    values: list[float | None]

    def points(self) -> list[tuple[int, float | None]]:
        """(time, value) pairs; like ``rrdtool fetch``, a row is labelled by the END of its interval."""
        return [(self.start + (i + 1) * self.step, v) for i, v in enumerate(self.values)]


def rra_args(step: int, retention: Retention = DEFAULT) -> list[str]:
    """The RRAs of a new file: by default 1 min for 2 days, 5 min for 2 weeks, 1 h for 62 days, 1 day
    for 2 years (each AVERAGE, MIN and MAX; with step 60, 1, 5, 60 and 1440 steps per row)."""
    if step != 60 and retention is DEFAULT:
        # the default plan in steps (1, 5, 60, 1440), as before retention was configurable
        return [
            f"RRA:{cf}:0.5:{steps}:{max(1, span // (steps * step))}"
            for cf in CFS
            for steps, span in ((1, 2 * DAY), (5, 14 * DAY), (60, 62 * DAY), (1440, 730 * DAY))
        ]
    return retention.rra_args(step)


def ds_arg(spec: SeriesSpec) -> str:
    lo = "U" if spec.min is None else num(spec.min)
    hi = "U" if spec.max is None else num(spec.max)
    return f"DS:{DS_NAME}:{spec.ds_type}:{int(spec.heartbeat)}:{lo}:{hi}"


def num(v: float) -> str:
    """A bound as rrdtool takes it: an integer when it is one."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))

"""What the service hands the alarm side after a value is archived (data flows one way)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Observation:
    """One archived value with the slurper's default tolerances (``[[alarm]]`` rules override them)."""

    metric_id: str
    time: float
    value: float | None
    ds_type: str = "GAUGE"
    interval: float = 60.0
    warning: str | None = None
    critical: str | None = None
    #: when the value was archived (None: the ``now`` of the round that observes it); set for values
    #: that reach the evaluating host through the inbox from another collector
    arrived: float | None = None
    #: how the value is shown (the slurper's MetricSpec): unit, 1000 or 1024 multiples, label, graph
    #: key; recorded in the metric catalogue (alarms.catalogue) for the web, never used to judge
    unit: str = ""
    base: int = 1000
    label: str = ""
    graph: str = ""
    #: how it is drawn (MetricSpec.cdef, MetricSpec.negative): Munin's RPN and in/out partner
    cdef: str = ""
    negative: str = ""


class AlarmSink(Protocol):
    """The alarm side as the service sees it."""

    def observe(self, observations: Sequence[Observation], now: float) -> None:
        """Evaluate newly archived values (persisting state and queueing notifications)."""

    def tick(self, now: float) -> None:
        """Periodic work: staleness, downtime starts/ends, re-notification, outbox delivery."""

    def close(self) -> None:
        """Deliver what is due and release resources."""

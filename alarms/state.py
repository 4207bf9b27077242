"""The per-metric alarm state as the web, the CLI and the API read it."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

State = Literal["OK", "WARNING", "CRITICAL", "UNKNOWN"]
STATES: tuple[State, ...] = typing.get_args(State)
#: problems first: the order the overview, the CLI and a message's subject (its worst state) go by
SEVERITY_ORDER: dict[str, int] = {s: i for i, s in enumerate(("CRITICAL", "UNKNOWN", "WARNING", "OK"))}


@dataclass(frozen=True)
class MetricState:
    metric_id: str
    state: State
    #: epoch seconds since when the metric is in ``state``
    since: float
    value: float | None = None
    #: time of the last archived value
    time: float | None = None
    #: a breach is building up but its ``for``/``samples`` has not elapsed (the state it would enter)
    pending: State | None = None
    in_downtime: bool = False
    downtime_id: int | None = None
    acknowledged: bool = False
    ack_comment: str = ""
    ack_author: str = ""
    flapping: bool = False
    #: no new value for longer than the rule's ``stale``
    stale: bool = False
    #: the effective tolerances: the resolved ``[[alarm]]`` rule's, else the slurper's defaults
    warning: str | None = None
    critical: str | None = None
    #: the name of the rule that applies ("slurper default" when no ``[[alarm]]`` matches)
    rule: str = ""
    #: when the newest value was archived (staleness is measured from here, not from ``time``)
    arrived: float | None = None

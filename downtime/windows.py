"""The shape in which downtimes reach the alarm engine and the graphs (pure data, no database)."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

Severity = Literal["outage", "at-risk"]
Kind = Literal["planned", "unplanned"]
SEVERITIES: tuple[Severity, ...] = typing.get_args(Severity)
KINDS: tuple[Kind, ...] = typing.get_args(Kind)


@dataclass(frozen=True)
class Window:
    """One concrete interval of one downtime (a recurring downtime yields one Window per occurrence).

    ``start`` is inclusive and ``end`` exclusive, both UTC epoch seconds. ``scope`` holds the downtime's
    glob patterns over metric ids.
    """

    downtime_id: int
    start: float
    end: float
    scope: tuple[str, ...]
    severity: Severity = "outage"
    kind: Kind = "planned"
    author: str = ""
    reason: str = ""
    ticket: str = ""

    def covers_time(self, t: float) -> bool:
        return self.start <= t < self.end

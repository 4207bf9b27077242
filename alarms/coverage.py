"""Which downtime windows cover a metric at a time (the engine's view of downtimes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from downtime.index import DowntimeIndex
from downtime.windows import Window


class Coverage(Protocol):
    """Anything answering ``covering(metric_id, t)`` (e.g. ``downtime.index.DowntimeIndex``)."""

    def covering(self, metric_id: str, t: float) -> list[Window]:
        """The windows whose scope matches ``metric_id`` and which contain ``t``."""
        ...


#: no downtimes at all
NO_DOWNTIME: Coverage = DowntimeIndex(())


def strongest(windows: Sequence[Window]) -> Window | None:
    """The window that suppresses most: an ``outage`` before an ``at-risk``; earliest start first."""
    if not windows:
        return None
    return min(windows, key=lambda w: (w.severity != "outage", w.start, w.downtime_id))

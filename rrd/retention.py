"""The retention plan: how long the archive keeps each resolution, as ``"1m:2d, 5m:2w, 1h:62d, 1d:2y"``.

Each tier is ``<resolution>:<span>``: keep one consolidated row per resolution for that long. Units
are s, m, h, d, w and y (365 days). Every resolution must be a whole number of archive steps, larger
than the one before, and its span longer than the resolution. Each tier is kept for AVERAGE, MIN and MAX.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

DEFAULT_RETENTION = "1m:2d, 5m:2w, 1h:62d, 1d:2y"
CFS = ("AVERAGE", "MIN", "MAX")
#: rrdtool's default xfiles factor: a consolidated row is known when half its steps are
XFF = 0.5
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_SPAN = re.compile(r"^\s*(\d+)\s*([smhdwy])\s*$")


class RetentionError(ValueError):
    """A retention text that cannot be a plan; the message names the tier and what is wrong."""


@dataclass(frozen=True, slots=True)
class Retention:
    """Tiers of (resolution, span) in seconds, finest first."""

    tiers: tuple[tuple[int, int], ...]

    def rras(self, step: int) -> list[tuple[str, int, int]]:
        """(CF, steps per row, rows) of each RRA for files of ``step`` seconds."""
        self.check(step)
        return [(cf, res // step, max(1, span // res)) for cf in CFS for res, span in self.tiers]

    def rra_args(self, step: int) -> list[str]:
        """The ``RRA:`` arguments of ``rrdtool create``."""
        return [f"RRA:{cf}:{XFF}:{steps}:{rows}" for cf, steps, rows in self.rras(step)]

    def check(self, step: int) -> None:
        """Raise RetentionError when a resolution is not a whole number of ``step`` seconds."""
        for res, _span in self.tiers:
            if res % step:
                raise RetentionError(
                    f"resolution {_text(res)} is not a whole number of archive steps ({step} s)"
                )

    def __str__(self) -> str:
        return ", ".join(f"{_text(r)}:{_text(s)}" for r, s in self.tiers)


def _seconds(text: str, where: str) -> int:
    m = _SPAN.match(text)
    if not m or int(m.group(1)) == 0:
        raise RetentionError(f"{where}: {text.strip()!r} is not a duration such as 1m, 2d, 2w, 1y")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _text(seconds: int) -> str:
    for unit in ("y", "w", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


@functools.lru_cache(maxsize=64)
def parse_retention(text: str) -> Retention:
    """``"1m:2d, 5m:2w"`` -> Retention(((60, 172800), (300, 1209600))); RetentionError names the tier."""
    if not isinstance(text, str) or not text.strip():
        raise RetentionError('retention is empty; write tiers such as "1m:2d, 5m:2w, 1h:62d, 1d:2y"')
    tiers: list[tuple[int, int]] = []
    for n, part in enumerate(text.split(","), 1):
        res_text, sep, span_text = part.partition(":")
        where = f"tier {n} ({part.strip()!r})"
        if not sep:
            raise RetentionError(f"{where}: write <resolution>:<span>, such as 5m:2w")
        res, span = _seconds(res_text, where), _seconds(span_text, where)
        if span <= res:
            raise RetentionError(f"{where}: the span must be longer than the resolution")
        if tiers and res <= tiers[-1][0]:
            raise RetentionError(f"{where}: resolutions must grow from one tier to the next")
        tiers.append((res, span))
    return Retention(tuple(tiers))


DEFAULT = parse_retention(DEFAULT_RETENTION)

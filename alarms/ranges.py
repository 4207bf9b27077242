"""Nagios threshold ranges: ``[@][start:][end]`` with ``~`` for minus infinity.

A range says when to ALERT. Without ``@`` a value alerts when it lies *outside* ``start..end``
(both ends inclusive); with ``@`` it alerts when it lies *inside*.

==========  =========================================
``10``      alert if < 0 or > 10
``10:``     alert if < 10
``~:10``    alert if > 10
``10:20``   alert if < 10 or > 20
``@10:20``  alert if 10 <= value <= 20
==========  =========================================

Munin's bare ``warning 80`` means "warn above 80" and ``70:80`` "warn outside 70..80";
:func:`from_munin` translates those (a bare Munin number keeps no lower bound, unlike Nagios' ``80``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RANGE = re.compile(rf"^(@)?(?:(~|{_NUM})?:)?({_NUM})?$")


class RangeError(ValueError):
    """A threshold string does not follow the Nagios range grammar."""


@dataclass(frozen=True)
class Range:
    start: float
    end: float
    inside: bool
    text: str

    def alerts(self, value: float) -> bool:
        """True when ``value`` breaches this range."""
        within = self.start <= value <= self.end
        return within if self.inside else not within

    def __str__(self) -> str:
        return self.text


def parse_range(text: str) -> Range:
    """Parse a Nagios range; raise :class:`RangeError` naming the text when it is not one."""
    if not isinstance(text, str):
        raise RangeError(f"a range is a string like '10', '~:10', '10:20' or '@10:20', got {text!r}")
    raw = text.strip()
    m = _RANGE.match(raw)
    if not raw or not m or raw in ("@", ":", "@:"):
        raise RangeError(f"{text!r} is not a Nagios range (forms: 10, 10:, ~:10, 10:20, @10:20)")
    inside, start_s, end_s = m.group(1) is not None, m.group(2), m.group(3)
    has_colon = ":" in raw
    if not has_colon:
        start, end = 0.0, float(end_s)
    else:
        if start_s is None:
            start = 0.0  # ":10" (Munin style) reads like "10"
        elif start_s == "~":
            start = -math.inf
        else:
            start = float(start_s)
        end = math.inf if end_s is None else float(end_s)
    if start > end:
        raise RangeError(f"{text!r}: start {start:g} is greater than end {end:g}")
    return Range(start=start, end=end, inside=inside, text=raw)


def from_munin(text: str) -> str:
    """Translate a Munin ``warning``/``critical`` value into the Nagios grammar.

    Munin: ``80`` = above 80; ``:80`` = above 80; ``70:`` = below 70; ``70:80`` = outside 70..80.
    """
    raw = text.strip()
    if ":" not in raw:
        parse_range(raw)  # validates the number
        return f"~:{raw}"
    lo, hi = raw.split(":", 1)
    lo = lo.strip() or "~"
    out = f"{lo}:{hi.strip()}"
    parse_range(out)
    return out

"""Query parameters from users, checked once: a bad one raises :class:`ParamError` naming it (400)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from downtime import timeparse
from rrd.names import MetricIdError, check_id

PERIODS = {"hour": 3600, "day": 86400, "week": 7 * 86400, "month": 31 * 86400, "year": 366 * 86400}
CFS = ("AVERAGE", "MIN", "MAX")
MAX_RANGE = 10 * 366 * 86400
_INT = re.compile(r"^-?\d{1,12}$")


class ParamError(ValueError):
    """A query parameter is missing or malformed."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class TimeRange:
    start: int
    end: int
    #: the named period, or "custom"
    period: str


def parse_time(name: str, text: str, now: float, zone: tzinfo = UTC) -> int:
    """Epoch seconds from a time in the one grammar (:mod:`downtime.timeparse`: ``now``, ``-2h``,
    ``yesterday 08:00``, ``2026-11-20 08:00`` in ``zone`` unless it names an offset, epoch seconds)."""
    try:
        return int(timeparse.parse_time(text, now, zone))
    except timeparse.TimeParseError as exc:
        raise ParamError(name, str(exc)) from None


def check_time(name: str, t: float) -> float:
    """``t`` when it lies between 1980 and 9999 (:func:`downtime.timeparse.check_time`); ParamError
    naming ``name`` if not."""
    try:
        return timeparse.check_time(t)
    except timeparse.TimeParseError as exc:
        raise ParamError(name, str(exc)) from None


def time_range(args: Mapping[str, str], now: float, default: str = "day", zone: tzinfo = UTC) -> TimeRange:
    """``period`` (hour..year, ending now) or ``start``/``end`` (in ``zone`` without an offset);
    ``end`` defaults to now."""
    period = args.get("period", "")
    if period and period not in PERIODS:
        raise ParamError("period", f"{period[:20]!r} is not one of {', '.join(PERIODS)}")
    end = parse_time("end", args["end"], now, zone) if args.get("end") else int(now)
    if args.get("start"):
        start = parse_time("start", args["start"], now, zone)
        name = "custom"
    else:
        name = period or default
        start = int(check_time("start", end - PERIODS[name]))
    if start >= end:
        raise ParamError("start", "must be before end")
    if end - start > MAX_RANGE:
        raise ParamError("start", "the range may span at most 10 years")
    return TimeRange(start, end, name)


def input_time(t: float, zone: tzinfo = UTC) -> str:
    """A time as the range form shows it: ``2026-11-20 08:00`` in ``zone`` (seconds only when not zero)."""
    d = datetime.fromtimestamp(t, zone)
    return d.strftime("%Y-%m-%d %H:%M:%S" if d.second else "%Y-%m-%d %H:%M")


def int_param(args: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if not _INT.match(raw.strip()) or not low <= int(raw) <= high:
        raise ParamError(name, f"must be an integer from {low} to {high}")
    return int(raw)


def choice(args: Mapping[str, str], name: str, options: tuple[str, ...], default: str) -> str:
    raw = args.get(name) or default
    if raw not in options:
        raise ParamError(name, f"{raw[:20]!r} is not one of {', '.join(options)}")
    return raw


def metric_id(slurper: str, metric: str) -> str:
    """A metric id from URL parts; raises :class:`ParamError` for anything but a plain id."""
    try:
        return check_id(f"{slurper}/{metric}")
    except MetricIdError as exc:
        raise ParamError("id", str(exc)) from None

"""Times as operators type them: ISO 8601, ``now``, ``+30m``, ``-1h``, ``tomorrow 08:00``, epoch seconds.

A time without a zone is read in the local zone (``$TZ``, else the system's), which the CLI shows.
``now`` and the zone are parameters: nothing here reads the clock.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, tzinfo

from dateutil import parser as dt_parser
from dateutil import tz as dt_tz

from slurpers.api import parse_duration

_RELATIVE = re.compile(r"^([+-])\s*(.+)$")
_DAY_WORD = re.compile(r"^(today|tomorrow|yesterday)(?:\s+(\d{1,2}):(\d{2}))?$", re.IGNORECASE)
_DAY_OFFSET = {"today": 0, "tomorrow": 1, "yesterday": -1}


class TimeParseError(ValueError):
    """A time expression could not be read; the message quotes it."""


def local_zone(name: str | None = None) -> tzinfo:
    """The zone named ``name``, else $TZ, else the system's local zone."""
    name = name or os.environ.get("TZ") or None
    if name:
        zone: tzinfo | None = dt_tz.gettz(name)
        if zone is None:
            raise TimeParseError(f"unknown time zone {name!r}")
        return zone
    local: tzinfo = dt_tz.tzlocal()
    return local


def zone_name(zone: tzinfo, at: float) -> str:
    return datetime.fromtimestamp(at, zone).tzname() or "local"


def parse_time(text: str, now: float, tz: str | tzinfo | None = None) -> float:
    """UTC epoch seconds for ``text``; TimeParseError naming the text when it is not a time."""
    if not isinstance(text, str) or not text.strip():
        raise TimeParseError("empty time: use e.g. now, +30m, 'tomorrow 08:00' or 2026-05-04T08:00")
    raw = text.strip()
    zone = tz if isinstance(tz, tzinfo) else local_zone(tz)
    if raw.lower() == "now":
        return float(now)
    rel = _RELATIVE.match(raw)
    if rel and not re.match(r"^[+-]?\d{4}-", raw):
        try:
            delta = parse_duration(rel.group(2))
        except ValueError:
            raise TimeParseError(f"{text!r} is not a time (relative times look like +30m or -2h)") from None
        return float(now) + (delta if rel.group(1) == "+" else -delta)
    if re.fullmatch(r"\d{9,11}(\.\d+)?", raw):
        return float(raw)
    day = _DAY_WORD.match(raw)
    if day:
        return _day_word(day, now, zone, text)
    return _absolute(raw, zone, text)


def _day_word(m: re.Match[str], now: float, zone: tzinfo, text: str) -> float:
    base = datetime.fromtimestamp(now, zone) + timedelta(days=_DAY_OFFSET[m.group(1).lower()])
    hour, minute = (int(m.group(2)), int(m.group(3))) if m.group(2) else (0, 0)
    if hour > 23 or minute > 59:
        raise TimeParseError(f"{text!r}: {hour:02d}:{minute:02d} is not a time of day")
    local = base.replace(hour=hour, minute=minute, second=0, microsecond=0, tzinfo=None)
    return float(_localize(local, zone).timestamp())


def _absolute(raw: str, zone: tzinfo, text: str) -> float:
    candidate = re.sub(r"^(\d{4}-\d{2}-\d{2})[ ](\d)", r"\1T\2", raw)
    try:
        parsed: datetime = dt_parser.isoparse(candidate)
    except (ValueError, OverflowError):
        raise TimeParseError(
            f"{text!r} is not a time (use ISO 8601 like 2026-05-04T08:00, now, +30m or 'tomorrow 08:00')"
        ) from None
    if parsed.tzinfo is None:
        parsed = _localize(parsed, zone)
    return parsed.timestamp()


def _localize(naive: datetime, zone: tzinfo) -> datetime:
    """Attach ``zone``; a wall-clock time skipped by a DST change is an error, not a silent shift."""
    aware = naive.replace(tzinfo=zone)
    if not dt_tz.datetime_exists(aware):
        raise TimeParseError(f"{naive:%Y-%m-%d %H:%M} does not exist in {zone_name(zone, aware.timestamp())}")
    resolved: datetime = dt_tz.resolve_imaginary(aware)
    return resolved


def format_local(ts: float, zone: tzinfo) -> str:
    """``2026-05-04 08:00 CEST``: how the CLI shows a time."""
    d = datetime.fromtimestamp(ts, zone)
    return f"{d:%Y-%m-%d %H:%M} {d.tzname()}"

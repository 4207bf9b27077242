"""The one time grammar of rexmon: durations and times as operators type them, in the CLI, the forms and
the API alike.

Times: ``now``, ``+30m`` / ``-1h`` / ``2h ago`` (relative to now), ``today``/``tomorrow``/``yesterday``
with an optional ``HH:MM``, ISO 8601 (``2026-05-04T08:00``, ``2026-05-04 08:00``, with or without an
offset) and epoch seconds (nine digits or more). A time without an offset is read in the zone the
caller passes (the CLI: ``$TZ``, else the system's). Every time must lie between :data:`EARLIEST` and
:data:`LATEST`. Durations: ``90`` (seconds), ``30s``, ``5m``, ``2h``, ``1d``, ``1w``, ``1h30m``.

Nothing here reads the clock (``now`` is a parameter) and nothing imports another rexmon package, so
every package can use it: ``slurpers.api`` re-exports :func:`parse_duration`.
"""

from __future__ import annotations

import math
import os
import re
from datetime import datetime, timedelta, tzinfo

from dateutil import parser as dt_parser
from dateutil import tz as dt_tz

#: the times rexmon takes: rrdtool reads smaller numbers as dates, and every zone can show the latest
EARLIEST, LATEST = 315_532_800.0, 253_402_214_400.0  # 1980-01-01 and 9999-12-31 00:00 UTC
HINT = "use e.g. now, +30m, -2h, 2h ago, 'tomorrow 08:00', 2026-05-04T08:00 or epoch seconds"
_RELATIVE = re.compile(r"^([+-])\s*(.+)$")
_AGO = re.compile(r"^(.+?)\s+ago$", re.IGNORECASE)
_EPOCH = re.compile(r"^\d{9,}(\.\d+)?$")
_DAY_WORD = re.compile(r"^(today|tomorrow|yesterday)(?:\s+(\d{1,2}):(\d{2}))?$", re.IGNORECASE)
_DAY_OFFSET = {"today": 0, "tomorrow": 1, "yesterday": -1}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


class TimeParseError(ValueError):
    """A time, duration or zone could not be read; the message quotes what was given."""


def quote(text: object) -> str:
    """``text`` as error messages quote it (whole up to 100 characters, else its first 100)."""
    if isinstance(text, str) and len(text) > 100:
        return repr(text[:100]) + "..."
    return repr(text)


def parse_duration(value: object) -> float:
    """'90' or 90 -> 90 s; '5m', '2h', '1d', '1w', '1h30m' -> seconds. Raises ValueError naming the input."""
    if isinstance(value, bool):
        raise TimeParseError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0 or not math.isfinite(float(value)):
            raise TimeParseError(f"duration must be a finite number >= 0, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise TimeParseError(f"not a duration: {value!r}")
    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if text[pos : m.start()].strip():
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2).lower()]
        pos = m.end()
    if pos == 0 or text[pos:].strip():
        raise TimeParseError(f"not a duration: {value!r} (use e.g. 30s, 5m, 2h, 1d, 1w)")
    return total


def local_zone(name: str | None = None) -> tzinfo:
    """The zone named ``name``, else $TZ, else the system's; TimeParseError naming a zone that is unknown."""
    from_env = not name
    name = name or os.environ.get("TZ") or None
    if name:
        try:
            zone: tzinfo | None = dt_tz.gettz(name)
        except (ValueError, OSError):  # a path to a file that holds no zone
            zone = None
        if zone is None:
            where = "TZ=" if from_env else "time zone "
            raise TimeParseError(f"{where}{name!r:.80} is not a time zone (use an IANA name: Europe/Zurich)")
        return zone
    local: tzinfo = dt_tz.tzlocal()
    return local


def check_time(t: float, text: object = None) -> float:
    """``t`` when it lies between :data:`EARLIEST` and :data:`LATEST`; TimeParseError naming it if not."""
    if not EARLIEST <= t <= LATEST:  # also refuses NaN
        what = quote(text if text is not None else t)
        raise TimeParseError(f"{what} is out of range: times lie between 1980-01-01 and 9999-12-31 (UTC)")
    return float(t)


def parse_time(text: str, now: float, tz: str | tzinfo | None = None) -> float:
    """UTC epoch seconds for ``text``; TimeParseError quoting the text when it is not a time in range."""
    if not isinstance(text, str) or not text.strip():
        raise TimeParseError(f"empty time {quote(text)}: {HINT}")
    raw = text.strip()
    if len(raw) > 100:
        raise TimeParseError(f"{quote(text)} is not a time (longer than 100 characters)")
    zone = tz if isinstance(tz, tzinfo) else local_zone(tz)
    try:
        return check_time(_parse(raw, float(now), zone, text), text)
    except (OverflowError, OSError, ValueError) as exc:
        if isinstance(exc, TimeParseError):
            raise
        raise TimeParseError(f"{quote(text)} is out of range: {HINT}") from None


def _parse(raw: str, now: float, zone: tzinfo, text: str) -> float:
    if raw.lower() == "now":
        return now
    ago = _AGO.match(raw)
    rel = _RELATIVE.match(raw)
    if ago or (rel and not re.match(r"^[+-]?\d{4}-", raw)):
        sign, amount = ("-", ago.group(1)) if ago else (rel.group(1), rel.group(2))  # type: ignore[union-attr]
        try:
            delta = parse_duration(amount)
        except ValueError:
            hint = "relative times look like +30m, -2h or 2h ago"
            raise TimeParseError(f"{quote(text)} is not a time ({hint})") from None
        return now + (delta if sign == "+" else -delta)
    if _EPOCH.match(raw):
        return float(raw)
    day = _DAY_WORD.match(raw)
    if day:
        return _day_word(day, now, zone, text)
    return _absolute(raw, zone, text)


def _day_word(m: re.Match[str], now: float, zone: tzinfo, text: str) -> float:
    base = datetime.fromtimestamp(now, zone) + timedelta(days=_DAY_OFFSET[m.group(1).lower()])
    hour, minute = (int(m.group(2)), int(m.group(3))) if m.group(2) else (0, 0)
    if hour > 23 or minute > 59:
        raise TimeParseError(f"{quote(text)}: {hour:02d}:{minute:02d} is not a time of day")
    local = base.replace(hour=hour, minute=minute, second=0, microsecond=0, tzinfo=None)
    return float(_localize(local, zone, text).timestamp())


def _absolute(raw: str, zone: tzinfo, text: str) -> float:
    candidate = re.sub(r"^(\d{4}-\d{2}-\d{2})[ ](\d)", r"\1T\2", raw)
    try:
        parsed: datetime = dt_parser.isoparse(candidate)
    except (ValueError, OverflowError):
        raise TimeParseError(f"{quote(text)} is not a time ({HINT})") from None
    if parsed.tzinfo is None:
        parsed = _localize(parsed, zone, text)
    return parsed.timestamp()


def _localize(naive: datetime, zone: tzinfo, text: str) -> datetime:
    """Attach ``zone``; a wall-clock time skipped by a DST change is an error, not a silent shift."""
    aware = naive.replace(tzinfo=zone)
    if not dt_tz.datetime_exists(aware):
        where = zone_name(zone, aware.timestamp())
        raise TimeParseError(f"{quote(text)}: {naive:%Y-%m-%d %H:%M} does not exist in {where}")
    resolved: datetime = dt_tz.resolve_imaginary(aware)
    return resolved


def zone_name(zone: tzinfo, at: float) -> str:
    try:
        return datetime.fromtimestamp(at, zone).tzname() or "local"
    except (OverflowError, OSError, ValueError):
        return "local"


def format_local(ts: float, zone: tzinfo) -> str:
    """``2026-05-04 08:00 CEST``: how the CLI shows a time (a time out of range as its epoch seconds)."""
    try:
        d = datetime.fromtimestamp(ts, zone)
    except (OverflowError, OSError, ValueError):
        return f"epoch {ts!r} (out of range)"
    return f"{d:%Y-%m-%d %H:%M} {d.tzname()}"

"""Every rule a downtime must keep, in one place: the CLI, the web forms, the API and the store's readers
all call these, so a downtime one of them refuses can be filed through none of them.

A check raises :class:`DowntimeError` carrying the field at fault and a message that names it.
"""

from __future__ import annotations

import math
import os
import re
import zoneinfo
from collections.abc import Sequence
from datetime import tzinfo
from pathlib import Path

from dateutil import tz as dt_tz

from downtime.timeparse import TimeParseError, check_time
from downtime.windows import KINDS as KINDS
from downtime.windows import SEVERITIES as SEVERITIES

#: the longest zone name, scope pattern, author, reason and ticket the database keeps
MAX_ZONE, MAX_PATTERN, MAX_AUTHOR, MAX_REASON, MAX_TICKET = 64, 400, 200, 1000, 1000
#: a glob over metric ids: the characters of ids (rrd.names) and of globs, at most one '/'
_PATTERN = re.compile(r"^[A-Za-z0-9._*?\[\]!-]+(/[A-Za-z0-9._*?\[\]!-]+)?$")
#: an IANA zone name (Europe/Zurich) or a POSIX TZ string (EST5EDT), never a path: gettz opens files
_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+,.-]*(/[A-Za-z0-9_+,.-]+)*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class DowntimeError(ValueError):
    """A downtime is invalid; ``field`` names the field at fault and the message says why."""

    def __init__(self, message: str, field: str = "downtime") -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class DowntimeNotFound(LookupError):
    """No downtime has that id."""


def zone_key(name: str) -> str:
    """A zone as it is stored: ``:Europe/Zurich`` and ``/usr/share/zoneinfo/Europe/Zurich`` (as $TZ may
    hold them) are ``Europe/Zurich``."""
    name = name.strip().lstrip(":")
    for root in zoneinfo.TZPATH:
        name = name.removeprefix(f"{root.rstrip('/')}/")
    return name


def zone_of(name: str) -> tzinfo:
    """The zone a user names (see :func:`zone_key`); never a path, which gettz would open and read."""
    key = zone_key(name)
    zone: tzinfo | None = None
    if len(key) <= MAX_ZONE and _ZONE.match(key) and ".." not in key:
        try:
            zone = dt_tz.gettz(key)
        except (ValueError, OSError):  # a file in the zoneinfo folder that holds no zone
            zone = None
    if zone is None:
        raise DowntimeError(f"time zone {name[:60]!r} is unknown (use an IANA name like Europe/Zurich)", "tz")
    return zone


def site_zone() -> str:
    """The zone times without an offset are read in, named as it is stored: $TZ, else the system's
    (/etc/timezone), else UTC."""
    name = zone_key(os.environ.get("TZ", ""))
    if not name:
        try:
            name = zone_key(Path("/etc/timezone").read_text(encoding="utf-8"))
        except OSError:
            name = ""
    try:
        zone_of(name)
    except DowntimeError:
        return "UTC"
    return name


def check_scope(scope: Sequence[str]) -> list[str]:
    """The scope's glob patterns, stripped; DowntimeError naming the first bad one."""
    patterns = [p.strip() for p in scope if p and p.strip()]
    if not patterns:
        raise DowntimeError("scope is empty: give at least one glob over metric ids (e.g. condor/*)", "scope")
    for p in patterns:
        if len(p) > MAX_PATTERN:
            raise DowntimeError(f"scope {p[:60]!r}... is longer than {MAX_PATTERN} characters", "scope")
        if not _PATTERN.match(p) or ".." in p:
            why = "is not a glob over metric ids (e.g. condor/* or */load)"
            raise DowntimeError(f"scope {p[:60]!r} {why}", "scope")
    return patterns


def check_times(start: float, end: float) -> None:
    """Both times finite and between 1980 and 9999, ``end`` after ``start``."""
    for name, t in (("start", start), ("end", end)):
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t):
            raise DowntimeError(f"{name} {t!r:.40} is not a time", name)
        try:
            check_time(t)
        except TimeParseError as exc:
            raise DowntimeError(f"{name}: {exc}", name) from None
    if not end > start:
        raise DowntimeError("end must be after start", "end")


def check_text(field: str, value: str, limit: int, *, required: bool = True, one_line: bool = False) -> str:
    """A stripped text field: present when required, at most ``limit`` characters, one printable line
    when ``one_line`` (calendars take the ticket as the event's URL)."""
    text = (value or "").strip()
    if required and not text:
        raise DowntimeError(f"{field} is required", field)
    if len(text) > limit:
        raise DowntimeError(f"{field} is longer than {limit} characters", field)
    if one_line and _CONTROL.search(text):
        raise DowntimeError(f"{field} must be one line of printable text", field)
    return text


def check_choice(field: str, value: str, options: Sequence[str]) -> str:
    if value not in options:
        raise DowntimeError(f"{field} {value!r:.40} is not one of {', '.join(options)}", field)
    return value

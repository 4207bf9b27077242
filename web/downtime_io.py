"""Downtimes in and out of the web: form or JSON fields to store arguments, store rows to JSON."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any

from dateutil import tz as dt_tz

from downtime.models import Downtime, DowntimeAudit
from downtime.store import KINDS, SEVERITIES, DowntimeError, check_rrule, status_at
from downtime.timeparse import TimeParseError, parse_time
from web.params import ParamError, check_time

__all__ = ["KINDS", "SEVERITIES", "DowntimeInput", "downtime_dict", "parse_downtime", "scope_preview"]
_PATTERN = re.compile(r"^[A-Za-z0-9._*?\[\]!-]+(/[A-Za-z0-9._*?\[\]!-]+)?$")
#: an IANA zone name (Europe/Zurich) or a POSIX TZ string (EST5EDT), never a path: gettz opens files
_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+,.-]*(/[A-Za-z0-9_+,.-]+)*$")
_INTERVAL = re.compile(r"(?:^|[;:])INTERVAL=([^;]*)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_ZONE, MAX_PATTERN = 64, 400  # the longest zone name and scope pattern the database keeps
MAX_PREVIEW = 200


def form_zone() -> str:
    """The zone form times without an offset are read in, as the CLI: $TZ, else the system's, else UTC;
    named as the form takes it back (TZ=/usr/share/zoneinfo/Europe/Zurich is Europe/Zurich)."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            name = Path("/etc/timezone").read_text(encoding="utf-8").strip()
        except OSError:
            name = ""
    for root in zoneinfo.TZPATH:
        name = name.removeprefix(f"{root.rstrip('/')}/")
    try:
        zone_of(name)
    except ParamError:
        return "UTC"
    return name


def zone_of(name: str) -> tzinfo:
    """The zone a user names; never a path, which gettz would open and read."""
    zone: tzinfo | None = None
    if len(name) <= MAX_ZONE and _ZONE.match(name) and ".." not in name:
        try:
            zone = dt_tz.gettz(name)
        except (ValueError, OSError):  # a file in the zoneinfo folder that holds no zone
            zone = None
    if zone is None:
        raise ParamError("tz", f"{name[:60]!r} is not a time zone (use an IANA name like Europe/Zurich)")
    return zone


@dataclass(frozen=True)
class DowntimeInput:
    scope: tuple[str, ...]
    start: float
    end: float
    reason: str
    kind: str = "planned"
    severity: str = "outage"
    ticket: str = ""
    rrule: str = ""
    tz: str = "UTC"

    def store_kwargs(self, *, author: str, now: float) -> dict[str, Any]:
        return {
            "scope": list(self.scope),
            "start": self.start,
            "end": self.end,
            "reason": self.reason,
            "author": author,
            "kind": self.kind,
            "severity": self.severity,
            "ticket": self.ticket,
            "rrule": self.rrule or None,
            "tz": self.tz,
            "now": now,
        }


def split_scope(text: str) -> tuple[str, ...]:
    """Glob patterns over metric ids, separated by commas, spaces or new lines."""
    parts = tuple(p for p in re.split(r"[\s,]+", text.strip()) if p)
    for p in parts:
        if not _PATTERN.match(p) or ".." in p:
            raise ParamError("scope", f"{p[:60]!r} is not a glob over metric ids (e.g. condor/* or */load)")
    if not parts:
        raise ParamError("scope", "name at least one glob over metric ids")
    scope = tuple(p if "/" in p else f"{p}/*" for p in parts)
    for p in scope:
        if len(p) > MAX_PATTERN:
            raise ParamError("scope", f"{p[:60]!r}... is longer than {MAX_PATTERN} characters")
    return scope


def when(name: str, text: str, now: float, zone: tzinfo | None = None) -> float:
    """A time as the CLI reads it (now, +2h, ISO 8601, epoch); a time without offset is in ``zone``."""
    text = text.strip()
    if not text:
        return float(now)
    try:
        return check_time(name, float(parse_time(text[:100], now, zone or dt_tz.UTC)))
    except TimeParseError as exc:
        raise ParamError(name, str(exc)) from None
    except OverflowError:  # e.g. 9999-12-31T23:59 west of UTC is in the year 10000
        raise ParamError(name, f"{text[:40]!r} is out of range") from None


def parse_downtime(fields: Mapping[str, str], now: float) -> DowntimeInput:
    """Check every field of a new downtime; the first bad one raises :class:`ParamError`."""
    scope = split_scope(fields.get("scope", ""))
    tz = fields.get("tz", "").strip() or form_zone()
    zone = zone_of(tz)
    start = when("start", fields.get("start", ""), now, zone)
    if not fields.get("end", "").strip():
        raise ParamError("end", "required (a time, or a duration like +2h)")
    end = when("end", fields["end"], start, zone)  # +2h: two hours after the start
    if end <= start:
        raise ParamError("end", "must be after start")
    reason = fields.get("reason", "").strip()
    if not reason:
        raise ParamError("reason", "required: say why, for the people who read the alarms")
    kind = fields.get("kind") or "planned"
    if kind not in KINDS:
        raise ParamError("kind", f"must be one of {', '.join(KINDS)}")
    severity = fields.get("severity") or "outage"
    if severity not in SEVERITIES:
        raise ParamError("severity", f"must be one of {', '.join(SEVERITIES)}")
    ticket = fields.get("ticket", "").strip()[:200]
    if _CONTROL.search(ticket):  # calendars take the ticket as the event's URL: one line, printable
        raise ParamError("ticket", "must be one line of printable text (an id or a URL)")
    rrule = fields.get("rrule", "").strip()[:500]
    if rrule:
        check_repeats(rrule, start, tz)
    return DowntimeInput(scope, start, end, reason[:1000], kind, severity, ticket, rrule, tz)


def check_repeats(rule: str, start: float, tz: str) -> None:
    """The store's check of an RRULE, and that the rule occurs at all: the search for the next occurrence
    of one that never does (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30) runs to the year 9999, seconds on every
    page that shows the downtime."""
    # dateutil takes INTERVAL=0 and then never moves past the start: the search for an occurrence hangs
    if any(not re.fullmatch(r"0*[1-9][0-9]*", v) for v in _INTERVAL.findall(rule)):
        raise ParamError("rrule", "INTERVAL must be a whole number of at least 1")
    try:
        first = next(iter(check_rrule(rule, start, tz)), None)
    except DowntimeError as exc:
        raise ParamError("rrule", str(exc)) from None
    except (ValueError, TypeError, IndexError):  # dateutil checks some parts only when it iterates
        raise ParamError("rrule", f"{rule[:80]!r} is not valid (a part is out of range)") from None
    if first is None:
        raise ParamError("rrule", f"{rule[:80]!r} has no occurrence (no day matches every BY... part)")


def scope_preview(text: str, metric_ids: Sequence[str]) -> dict[str, Any]:
    """Which metric ids the scope matches (the first :data:`MAX_PREVIEW` of them, and how many)."""
    scope = split_scope(text)
    hits = [m for m in metric_ids if any(fnmatch.fnmatchcase(m, p) for p in scope)]
    return {"scope": list(scope), "count": len(hits), "metrics": hits[:MAX_PREVIEW]}


def downtime_dict(d: Downtime, now: float, audit: Sequence[DowntimeAudit] | None = None) -> dict[str, Any]:
    """A downtime as JSON-ready data; ``phase`` is active, upcoming, past or cancelled at ``now``."""
    out: dict[str, Any] = {
        "id": d.id,
        "scope": list(d.scope),
        "start": d.start,
        "end": d.end,
        "reason": d.reason,
        "author": d.author,
        "kind": d.kind,
        "severity": d.severity,
        "ticket": d.ticket,
        "rrule": d.rrule,
        "rrule_until": d.rrule_until,
        "tz": d.tz,
        "status": d.status,
        "phase": status_at(d, now),
        "cancel_reason": d.cancel_reason,
        "created": d.created,
        "updated": d.updated,
    }
    if audit is not None:
        out["audit"] = [audit_dict(a) for a in audit]
    return out


def audit_dict(a: DowntimeAudit) -> dict[str, Any]:
    try:
        detail = json.loads(a.detail or "{}")
    except ValueError:
        detail = {"text": a.detail}
    return {"id": a.id, "at": a.at, "author": a.author, "action": a.action, "detail": detail}

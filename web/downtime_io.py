"""Downtimes in and out of the web: form or JSON fields to store arguments, store rows to JSON."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, TypeVar

from downtime import checks
from downtime.checks import KINDS, SEVERITIES, DowntimeError
from downtime.models import Downtime, DowntimeAudit
from downtime.store import check_downtime, problem, status_at
from downtime.timeparse import TimeParseError, parse_time
from web.params import ParamError

__all__ = ["KINDS", "SEVERITIES", "DowntimeInput", "downtime_dict", "parse_downtime", "scope_preview"]
MAX_PREVIEW = 200
T = TypeVar("T")


def field_error(exc: DowntimeError) -> ParamError:
    """The store's refusal as a ParamError naming the field it is about."""
    return ParamError(exc.field, exc.message)


def checked(call: Callable[[], T]) -> T:
    """``call()``, its DowntimeError turned into the ParamError of the field at fault (a 400)."""
    try:
        return call()
    except DowntimeError as exc:
        raise field_error(exc) from None


def form_zone() -> str:
    """The zone form times without an offset are read in, as the CLI: $TZ, else the system's, else UTC."""
    return checks.site_zone()


def zone_of(name: str) -> tzinfo:
    """The zone a user names; never a path, which gettz would open and read."""
    return checked(lambda: checks.zone_of(name))


@dataclass(frozen=True)
class DowntimeInput:
    """A new downtime as read from a form or a JSON body and checked by the store's checks."""

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
    """Glob patterns over metric ids, separated by commas, spaces or new lines (``a`` is ``a/*``)."""
    parts = [p for p in re.split(r"[\s,]+", text.strip()) if p]
    if not parts:
        raise ParamError("scope", "name at least one glob over metric ids")
    return tuple(checked(lambda: checks.check_scope([p if "/" in p else f"{p}/*" for p in parts])))


def when(name: str, text: str, now: float, zone: tzinfo | None = None) -> float:
    """A time in the one grammar (now, +2h, ISO 8601, epoch); a time without offset is in ``zone``."""
    text = text.strip()
    if not text:
        return float(now)
    try:
        return parse_time(text, now, zone or checks.zone_of("UTC"))
    except TimeParseError as exc:
        raise ParamError(name, str(exc)) from None


def parse_downtime(fields: Mapping[str, str], now: float) -> DowntimeInput:
    """Read every field of a new downtime and check it with the store's checks; the first bad one
    raises :class:`ParamError` naming it."""
    scope = split_scope(fields.get("scope", ""))
    tz = fields.get("tz", "").strip() or form_zone()
    zone = zone_of(tz)
    start = when("start", fields.get("start", ""), now, zone)
    if not fields.get("end", "").strip():
        raise ParamError("end", "required (a time, or a duration like +2h)")
    end = when("end", fields["end"], start, zone)  # +2h: two hours after the start
    reason = fields.get("reason", "").strip()
    if not reason:
        raise ParamError("reason", "required: say why, for the people who read the alarms")
    kind = fields.get("kind") or "planned"
    severity = fields.get("severity") or "outage"
    ok = checked(
        lambda: check_downtime(scope, start, end, reason, kind, severity, fields.get("ticket", ""),
                               fields.get("rrule", ""), tz)
    )  # fmt: skip
    return DowntimeInput(
        tuple(ok.scope), start, end, ok.reason, kind, severity, ok.ticket, ok.rrule or "", ok.tz
    )


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
        "problem": problem(d),
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

"""Downtimes in and out of the web: form or JSON fields to store arguments, store objects to JSON."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from web.params import ParamError, parse_time

KINDS = ("planned", "unplanned")
SEVERITIES = ("outage", "at-risk")
_PATTERN = re.compile(r"^[A-Za-z0-9._*?\[\]!-]+(/[A-Za-z0-9._*?\[\]!-]+)?$")
_FIELDS = (
    "id",
    "scope",
    "start",
    "end",
    "reason",
    "author",
    "kind",
    "severity",
    "ticket",
    "rrule",
    "created",
    "created_at",
    "updated",
    "ended",
    "ended_at",
    "cancelled",
    "cancelled_at",
    "cancel_reason",
    "status",
    "state",
)
MAX_PREVIEW = 200


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
    return tuple(p if "/" in p else f"{p}/*" for p in parts)


def when(name: str, text: str, now: float) -> float:
    """A time from a form: the downtime package's grammar when present, else epoch or ISO 8601."""
    text = text.strip()
    if not text or text == "now":
        return float(now)
    try:
        from downtime.timeparse import parse_time as dt_parse
    except ImportError:
        return float(parse_time(name, text))
    try:
        return float(dt_parse(text, now))
    except (ValueError, TypeError) as exc:
        raise ParamError(name, str(exc)) from None


def parse_downtime(fields: Mapping[str, str], now: float) -> DowntimeInput:
    """Check every field of a new downtime; the first bad one raises :class:`ParamError`."""
    scope = split_scope(fields.get("scope", ""))
    start = when("start", fields.get("start", ""), now)
    if not fields.get("end", "").strip():
        raise ParamError("end", "required (a time, or a duration like +2h)")
    end = when("end", fields["end"], start)
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
    return DowntimeInput(
        scope,
        start,
        end,
        reason[:1000],
        kind,
        severity,
        fields.get("ticket", "").strip()[:200],
        fields.get("rrule", "").strip()[:500],
    )


def scope_preview(text: str, metric_ids: Sequence[str]) -> dict[str, Any]:
    """Which metric ids the scope matches (the first :data:`MAX_PREVIEW` of them, and how many)."""
    scope = split_scope(text)
    hits = [m for m in metric_ids if any(fnmatch.fnmatchcase(m, p) for p in scope)]
    return {"scope": list(scope), "count": len(hits), "metrics": hits[:MAX_PREVIEW]}


def downtime_dict(d: Any, audit: Sequence[Any] | None = None) -> dict[str, Any]:
    """A store object as JSON-ready data (dataclass, SQLAlchemy row or mapping)."""
    out = _as_dict(d)
    if "scope" in out and isinstance(out["scope"], str):
        out["scope"] = split_scope(out["scope"]) if out["scope"] else []
    if audit is not None:
        out["audit"] = [_as_dict(a) for a in audit]
    return out


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, Mapping):
        raw = dict(obj)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        raw = dataclasses.asdict(obj)
    else:
        try:
            from sqlalchemy import inspect

            raw = {a.key: getattr(obj, a.key) for a in inspect(obj).mapper.column_attrs}
        except Exception:
            raw = {k: getattr(obj, k) for k in _FIELDS if hasattr(obj, k)}
    return {k: _jsonable(v) for k, v in raw.items() if not k.startswith("_")}


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if hasattr(v, "timestamp"):
        return v.timestamp()
    return str(v)

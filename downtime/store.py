"""Filing, changing and querying downtimes; every change is written to the audit trail.

Semantics (docs/downtime.md): a downtime covers ``start <= t < end`` (UTC epoch seconds). A recurring
downtime repeats by its RFC 5545 RRULE in its time zone ``tz``, so 08:00 stays 08:00 local across DST;
each occurrence lasts ``end - start``. Nothing is ever deleted: ending early, extending and cancelling
change the row and add an audit entry in the same transaction.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from dateutil import rrule as dt_rrule
from dateutil import tz as dt_tz
from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from downtime.db import session_factory
from downtime.models import Downtime, DowntimeAudit, DowntimeScope
from downtime.windows import Window

KINDS = ("planned", "unplanned")
SEVERITIES = ("outage", "at-risk")
Which = Literal["active", "upcoming", "past", "all"]
#: a runaway rule (FREQ=SECONDLY) must not flood a query
MAX_OCCURRENCES = 5000


class DowntimeError(ValueError):
    """A downtime request is invalid; the message says which field and why."""


class DowntimeNotFound(LookupError):
    """No downtime has that id."""


def check_rrule(rule: str, start: float, tz: str) -> dt_rrule.rrule:
    """Parse an RRULE anchored at ``start`` in ``tz``; DowntimeError if it is not one."""
    zone = dt_tz.gettz(tz)
    if zone is None:
        raise DowntimeError(f"time zone {tz!r} is unknown")
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if not text or "\n" in text or "DTSTART" in text.upper():
        raise DowntimeError(f"rrule {rule!r:.80} is not an RFC 5545 RRULE (e.g. FREQ=WEEKLY;BYDAY=TU)")
    try:
        parsed = dt_rrule.rrulestr(text, dtstart=datetime.fromtimestamp(start, zone))
    except (ValueError, TypeError) as exc:
        raise DowntimeError(f"rrule {rule!r:.80} is not valid: {exc}") from None
    assert isinstance(parsed, dt_rrule.rrule)
    return parsed


def validate(
    scope: Sequence[str], start: float, end: float, reason: str, author: str, kind: str, severity: str
) -> list[str]:
    patterns = [p.strip() for p in scope if p and p.strip()]
    if not patterns:
        raise DowntimeError("scope is empty: give at least one glob over metric ids (e.g. condor/*)")
    if any(len(p) > 400 or "\n" in p for p in patterns):
        raise DowntimeError("a scope pattern is longer than 400 characters or spans lines")
    if not end > start:
        raise DowntimeError("end must be after start")
    if not reason or not reason.strip():
        raise DowntimeError("reason is required")
    if not author or not author.strip():
        raise DowntimeError("author is required")
    if kind not in KINDS:
        raise DowntimeError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if severity not in SEVERITIES:
        raise DowntimeError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    return patterns


class DowntimeStore:
    """The downtimes in one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = session_factory(engine)

    # -- changes -----------------------------------------------------------------------------------
    def add(
        self,
        scope: Sequence[str],
        start: float,
        end: float,
        reason: str,
        author: str,
        kind: str = "planned",
        severity: str = "outage",
        ticket: str = "",
        rrule: str | None = None,
        tz: str = "UTC",
        *,
        now: float,
    ) -> Downtime:
        patterns = validate(scope, start, end, reason, author, kind, severity)
        if rrule:
            check_rrule(rrule, start, tz)
        dt = Downtime(
            start=float(start), end=float(end), kind=kind, severity=severity, author=author.strip(),
            reason=reason.strip(), ticket=(ticket or "").strip(), rrule=rrule or None, tz=tz,
            status="active", cancel_reason="", created=now, updated=now,
        )  # fmt: skip
        dt.scopes = [DowntimeScope(pattern=p) for p in patterns]
        detail = {"scope": patterns, "start": start, "end": end, "kind": kind, "severity": severity}
        if rrule:
            detail["rrule"] = rrule
        with self._session.begin() as s:
            s.add(dt)
            s.flush()
            s.add(_audit(dt.id, now, author, "create", detail))
        return self.require(dt.id)

    def end(self, downtime_id: int, now: float, author: str) -> Downtime:
        """End now: a running downtime stops at ``now``; a recurring one has no occurrence after it."""
        with self._session.begin() as s:
            dt = self._live(s, downtime_id)
            detail: dict[str, Any]
            if dt.rrule is None:
                if dt.end <= now:
                    raise DowntimeError(f"downtime {downtime_id} is already over")
                if dt.start > now:
                    raise DowntimeError(f"downtime {downtime_id} has not started: cancel it instead")
                old, dt.end = dt.end, max(now, dt.start)
                detail = {"end": [old, dt.end]}
            else:
                dt.rrule_until = now
                detail = {"rrule_until": [None, now]}
            dt.updated = now
            s.add(_audit(dt.id, now, author, "end", detail))
        return self.require(downtime_id)

    def extend(self, downtime_id: int, end: float, author: str, now: float) -> Downtime:
        """Move the end (of every occurrence, for a recurring downtime)."""
        with self._session.begin() as s:
            dt = self._live(s, downtime_id)
            if not end > dt.start:
                raise DowntimeError("the new end must be after the downtime's start")
            old, dt.end, dt.updated = dt.end, float(end), now
            s.add(_audit(dt.id, now, author, "extend", {"end": [old, dt.end]}))
        return self.require(downtime_id)

    def cancel(self, downtime_id: int, reason: str, author: str, now: float) -> Downtime:
        """Withdraw a downtime (kept, marked cancelled, never matched again)."""
        if not reason or not reason.strip():
            raise DowntimeError("a reason for cancelling is required")
        with self._session.begin() as s:
            dt = self._live(s, downtime_id)
            dt.status, dt.cancel_reason, dt.updated = "cancelled", reason.strip(), now
            s.add(_audit(dt.id, now, author, "cancel", {"reason": reason.strip()}))
        return self.require(downtime_id)

    def _live(self, s: Session, downtime_id: int) -> Downtime:
        dt = s.get(Downtime, downtime_id)
        if dt is None:
            raise DowntimeNotFound(f"no downtime with id {downtime_id}")
        if dt.status == "cancelled":
            raise DowntimeError(f"downtime {downtime_id} is cancelled")
        return dt

    # -- reading -----------------------------------------------------------------------------------
    def get(self, downtime_id: int) -> Downtime | None:
        with self._session() as s:
            return s.get(Downtime, downtime_id)

    def require(self, downtime_id: int) -> Downtime:
        dt = self.get(downtime_id)
        if dt is None:
            raise DowntimeNotFound(f"no downtime with id {downtime_id}")
        return dt

    def audit(self, downtime_id: int) -> list[DowntimeAudit]:
        with self._session() as s:
            q = (
                select(DowntimeAudit)
                .where(DowntimeAudit.downtime_id == downtime_id)
                .order_by(DowntimeAudit.id)
            )
            return list(s.scalars(q))

    def all(self) -> list[Downtime]:
        with self._session() as s:
            return list(s.scalars(select(Downtime).order_by(Downtime.start, Downtime.id)))

    def list(self, which: Which = "all", now: float = 0.0) -> builtins.list[Downtime]:
        """``active``: an occurrence covers ``now``; ``upcoming``: one starts later; ``past``: neither."""
        if which not in ("active", "upcoming", "past", "all"):
            raise DowntimeError(f"list {which!r}: use active, upcoming, past or all")
        rows = self.all()
        if which == "all":
            return rows
        out = []
        for dt in rows:
            phase = status_at(dt, now)
            if phase == which or (which == "past" and phase == "cancelled"):
                out.append(dt)
        return out

    def windows(self, t0: float, t1: float) -> builtins.list[Window]:
        """Every occurrence of every live downtime that overlaps ``[t0, t1)``."""
        with self._session() as s:
            q = select(Downtime).where(
                Downtime.status == "active",
                Downtime.start < t1,
                or_(Downtime.rrule.is_not(None), Downtime.end > t0),
            )
            rows = list(s.scalars(q))
        out: builtins.list[Window] = []
        for dt in rows:
            out.extend(w for w in occurrences(dt, t0, t1) if w.start < t1 and w.end > t0)
        return out


def occurrences(dt: Downtime, t0: float, t1: float) -> list[Window]:
    """The windows of ``dt`` that may overlap ``[t0, t1)`` (recurrences expanded in the downtime's zone)."""
    if dt.rrule is None:
        return [_window(dt, dt.start, dt.end)]
    length = dt.end - dt.start
    rule = check_rrule(dt.rrule, dt.start, dt.tz)
    zone = dt_tz.gettz(dt.tz) or UTC
    after = datetime.fromtimestamp(max(dt.start, t0 - length), zone)
    before = datetime.fromtimestamp(t1, zone)
    out = []
    for occ in rule.xafter(after, count=MAX_OCCURRENCES, inc=True):
        if occ > before:
            break
        start = occ.timestamp()
        end = start + length
        if dt.rrule_until is not None:
            if start >= dt.rrule_until:
                break
            end = min(end, dt.rrule_until)
        out.append(_window(dt, start, end))
    return out


def status_at(dt: Downtime, now: float) -> str:
    """``active``, ``upcoming``, ``past`` or ``cancelled`` at ``now``."""
    if dt.status == "cancelled":
        return "cancelled"
    if dt.rrule is None:
        return "active" if dt.start <= now < dt.end else ("upcoming" if now < dt.start else "past")
    length = dt.end - dt.start
    for w in occurrences(dt, now - length, now + 1):
        if w.start <= now < w.end:
            return "active"
    if dt.rrule_until is not None and now >= dt.rrule_until:
        return "past"
    zone = dt_tz.gettz(dt.tz) or UTC
    nxt = check_rrule(dt.rrule, dt.start, dt.tz).after(datetime.fromtimestamp(now, zone))
    return "upcoming" if nxt is not None else "past"


def _window(dt: Downtime, start: float, end: float) -> Window:
    return Window(
        downtime_id=dt.id, start=start, end=end, scope=dt.scope, severity=dt.severity,  # type: ignore[arg-type]
        kind=dt.kind, author=dt.author, reason=dt.reason, ticket=dt.ticket,  # type: ignore[arg-type]
    )  # fmt: skip


def _audit(downtime_id: int, now: float, author: str, action: str, detail: dict[str, Any]) -> DowntimeAudit:
    return DowntimeAudit(
        downtime_id=downtime_id,
        at=now,
        author=author,
        action=action,
        detail=json.dumps(detail, sort_keys=True),
    )


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)

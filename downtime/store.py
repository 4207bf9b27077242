"""Filing, changing and querying downtimes; every change is written to the audit trail.

Semantics (docs/downtime.md): a downtime covers ``start <= t < end`` (UTC epoch seconds). A recurring
downtime repeats by its RFC 5545 RRULE in its time zone ``tz``, so 08:00 stays 08:00 local across DST;
each occurrence lasts ``end - start``. Nothing is ever deleted: ending early, extending and cancelling
change the row and add an audit entry in the same transaction.
"""

from __future__ import annotations

import builtins
import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from downtime.checks import KINDS as KINDS
from downtime.checks import (
    MAX_AUTHOR,
    MAX_REASON,
    MAX_TICKET,
    check_choice,
    check_scope,
    check_text,
    check_times,
    zone_key,
    zone_of,
)
from downtime.checks import SEVERITIES as SEVERITIES
from downtime.checks import DowntimeError as DowntimeError
from downtime.checks import DowntimeNotFound as DowntimeNotFound
from downtime.db import session_factory
from downtime.models import Downtime, DowntimeAudit, DowntimeScope
from downtime.recurrence import check_rule, expand
from downtime.timeparse import LATEST
from downtime.windows import Window

log = logging.getLogger(__name__)
Which = Literal["active", "upcoming", "past", "all"]
#: a row a reader refused, remembered so that it is logged once per process, not once per round
_REPORTED: set[tuple[int, str]] = set()


@dataclass(frozen=True)
class Checked:
    """The fields of a new downtime as they are stored."""

    scope: list[str]
    reason: str
    ticket: str
    rrule: str | None
    tz: str


def check_downtime(
    scope: Sequence[str], start: float, end: float, reason: str, kind: str = "planned",
    severity: str = "outage", ticket: str = "", rrule: str | None = None, tz: str = "UTC",
) -> Checked:  # fmt: skip
    """Every field of a new downtime (the author aside) as stored; DowntimeError naming the first field
    that is not valid. The CLI, the forms and the API all file through this."""
    patterns = check_scope(scope)
    check_times(start, end)
    text = check_text("reason", reason, MAX_REASON)
    check_choice("kind", kind, KINDS)
    check_choice("severity", severity, SEVERITIES)
    ticket = check_text("ticket", ticket, MAX_TICKET, required=False, one_line=True)
    zone_of(tz)
    key = zone_key(tz)
    rule = (rrule or "").strip() or None
    if rule:
        check_rule(rule, start, key)
    return Checked(patterns, text, ticket, rule, key)


def problem(dt: Downtime) -> str | None:
    """Why a stored downtime cannot be used (a row written before these checks, or by hand), or None.

    Readers skip such a row (it covers nothing) instead of crashing or hanging on it."""
    try:
        check_times(dt.start, dt.end)
        if dt.rrule:  # the zone matters only to a recurrence
            check_rule(dt.rrule, dt.start, zone_key(dt.tz))
        if dt.rrule_until is not None and not math.isfinite(dt.rrule_until):
            raise DowntimeError("rrule_until is not a time", "rrule_until")
    except DowntimeError as exc:
        return exc.message
    return None


def usable(dt: Downtime) -> bool:
    """No :func:`problem`; a refused row is logged once per process."""
    why = problem(dt)
    if why is None:
        return True
    if (dt.id, why) not in _REPORTED:
        _REPORTED.add((dt.id, why))
        log.warning("downtime %s is ignored (it covers nothing): %s", dt.id, why)
    return False


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
        ok = check_downtime(scope, start, end, reason, kind, severity, ticket, rrule, tz)
        author = check_text("author", author, MAX_AUTHOR)
        patterns, rrule = ok.scope, ok.rrule
        dt = Downtime(
            start=float(start), end=float(end), kind=kind, severity=severity, author=author,
            reason=ok.reason, ticket=ok.ticket, rrule=rrule, tz=ok.tz,
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
            if not dt.rrule:
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
                raise DowntimeError("the new end must be after the downtime's start", "end")
            check_times(dt.start, end)
            old, dt.end, dt.updated = dt.end, float(end), now
            s.add(_audit(dt.id, now, author, "extend", {"end": [old, dt.end]}))
        return self.require(downtime_id)

    def cancel(self, downtime_id: int, reason: str, author: str, now: float) -> Downtime:
        """Withdraw a downtime (kept, marked cancelled, never matched again)."""
        if not reason or not reason.strip():
            raise DowntimeError("a reason for cancelling is required", "reason")
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
            if phase == which or (which == "past" and phase in ("cancelled", "invalid")):
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
    """The windows of ``dt`` that may overlap ``[t0, t1)`` (recurrences expanded in the downtime's zone);
    none for a row with a :func:`problem`."""
    return list(_windows(dt, t0, t1)) if usable(dt) else []


def _windows(dt: Downtime, t0: float, t1: float) -> Iterator[Window]:
    if not dt.rrule:
        yield _window(dt, dt.start, dt.end)
        return
    length = dt.end - dt.start
    zone = zone_of(dt.tz)
    rule = check_rule(dt.rrule, dt.start, zone_key(dt.tz))
    after = datetime.fromtimestamp(min(max(dt.start, t0 - length), LATEST), zone)
    before = datetime.fromtimestamp(min(max(t1, dt.start), LATEST), zone)
    for occ in expand(rule, after, before, f"downtime {dt.id}"):
        start = occ.timestamp()
        end = start + length
        if dt.rrule_until is not None:
            if start >= dt.rrule_until:
                return
            end = min(end, dt.rrule_until)
        yield _window(dt, start, end)


def status_at(dt: Downtime, now: float) -> str:
    """``active``, ``upcoming``, ``past``, ``cancelled`` or ``invalid`` (a :func:`problem`) at ``now``."""
    if dt.status == "cancelled":
        return "cancelled"
    if not usable(dt):
        return "invalid"
    if not dt.rrule:
        return "active" if dt.start <= now < dt.end else ("upcoming" if now < dt.start else "past")
    length = dt.end - dt.start
    for w in _windows(dt, now - length, now + 1):
        if w.start <= now < w.end:
            return "active"
    later = next((w for w in _windows(dt, now, LATEST) if w.start > now), None)
    return "upcoming" if later is not None else "past"


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

"""A metric's alarm history read from the database: state changes, notifications sent, acknowledgements.

Read-only queries over the tables of :mod:`alarms.store`; the web's metric page and its JSON API show
the result. Newest first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine, select

from alarms.store import AlarmAckRow, AlarmHistoryRow, OutboxRow

EventKind = Literal["transition", "notification", "ack"]


@dataclass(frozen=True)
class Event:
    """One line of a metric's history."""

    time: float
    kind: EventKind
    #: transition: "OK -> WARNING"; notification: the target; ack: the author
    summary: str
    #: transition: why (value, stale, downtime...) and the value; notification: subject and delivery;
    #: ack: the comment
    detail: str
    state: str = ""
    author: str = ""
    downtime_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "time": self.time,
            "kind": self.kind,
            "summary": self.summary,
            "detail": self.detail,
            "state": self.state,
            "author": self.author,
            "downtime_id": self.downtime_id,
        }


def transitions(engine: Engine, metric_id: str, limit: int = 50) -> list[Event]:
    """The metric's state changes, notified or not, newest first."""
    t = AlarmHistoryRow
    q = (
        select(t.time, t.old_state, t.new_state, t.value, t.reason, t.downtime_id)
        .where(t.metric_id == metric_id)
        .order_by(t.time.desc(), t.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    out = []
    for at, old, new, value, reason, downtime_id in rows:
        shown = "" if value is None else f", value {value:.6g}"
        where = f", in downtime #{downtime_id}" if downtime_id is not None else ""
        out.append(
            Event(
                float(at),
                "transition",
                f"{old} → {new}",
                f"{reason}{shown}{where}",
                state=str(new),
                downtime_id=downtime_id,
            )
        )
    return out


def notifications(engine: Engine, metric_id: str, limit: int = 50) -> list[Event]:
    """Messages that named the metric, with whether and when they were delivered, newest first."""
    t = OutboxRow
    # metric_ids is a JSON list: match the quoted id, then check the list (``_`` is a LIKE wildcard)
    q = (
        select(
            t.created, t.target, t.severity, t.subject, t.metric_ids, t.delivered_at, t.attempts, t.last_error
        )
        .where(t.metric_ids.contains(json.dumps(metric_id), autoescape=True))
        .order_by(t.created.desc(), t.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    out = []
    for created, target, severity, subject, ids, delivered, attempts, error in rows:
        if metric_id not in json.loads(ids or "[]"):
            continue
        if delivered is not None:
            status = "delivered"
        elif attempts:
            status = f"not delivered yet ({attempts} attempts; last error: {str(error)[:200]})"
        else:
            status = "waiting for delivery"
        out.append(
            Event(
                float(created), "notification", f"to {target}", f"{subject} ({status})", state=str(severity)
            )
        )
    return out


def acks(engine: Engine, metric_id: str, limit: int = 50) -> list[Event]:
    """Acknowledgements filed for the metric (CLI or web), newest first."""
    t = AlarmAckRow
    q = (
        select(t.time, t.author, t.comment)
        .where(t.metric_id == metric_id)
        .order_by(t.time.desc(), t.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    return [
        Event(float(at), "ack", f"acknowledged by {author or 'unknown'}", str(comment), author=str(author))
        for at, author, comment in rows
    ]


def metric_history(engine: Engine, metric_id: str, limit: int = 50) -> list[Event]:
    """Transitions, notifications and acks of one metric merged, newest first, at most ``limit``."""
    events = [
        *transitions(engine, metric_id, limit),
        *notifications(engine, metric_id, limit),
        *acks(engine, metric_id, limit),
    ]
    events.sort(key=lambda e: e.time, reverse=True)
    return events[:limit]

"""Alarm state in the database: per-metric state, history, acknowledgements and the notification outbox.

The tables live on ``downtime.db.Base`` (one schema, one Alembic history: revision ``0002_alarms``).
A round's records, transitions and outbox messages are written in one transaction, so a restart
neither repeats nor loses a notification.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, cast

from sqlalchemy import Boolean, Float, Integer, String, Table, Text, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, mapped_column

from alarms.engine import MetricRecord, Transition
from alarms.state import MetricState
from downtime.db import Base


def _table(model: type[Base]) -> Table:
    """The Core table of a mapped class (typed: ``__table__`` is only a FromClause to mypy)."""
    return cast(Table, model.__table__)


class AlarmStateRow(Base):
    """One row per metric with an alarm: the engine's :class:`MetricRecord`."""

    __tablename__ = "alarm_state"
    metric_id: Mapped[str] = mapped_column(String(400), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="OK")
    since: Mapped[float] = mapped_column(Float, default=0.0)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    time: Mapped[float | None] = mapped_column(Float, nullable=True)
    ds_type: Mapped[str] = mapped_column(String(16), default="GAUGE")
    interval: Mapped[float] = mapped_column(Float, default=60.0)
    spec_warning: Mapped[str | None] = mapped_column(String(100), nullable=True)
    spec_critical: Mapped[str | None] = mapped_column(String(100), nullable=True)
    raw_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    raw_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    pending: Mapped[str | None] = mapped_column(String(16), nullable=True)
    pending_since: Mapped[float | None] = mapped_column(Float, nullable=True)
    pending_count: Mapped[int] = mapped_column(Integer, default=0)
    notified: Mapped[str] = mapped_column(String(16), default="OK")
    notified_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    acked: Mapped[bool] = mapped_column(Boolean, default=False)
    ack_author: Mapped[str] = mapped_column(String(200), default="")
    ack_comment: Mapped[str] = mapped_column(Text, default="")
    flapping: Mapped[bool] = mapped_column(Boolean, default=False)
    changes: Mapped[str] = mapped_column(Text, default="[]")
    downtime_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    downtime_severity: Mapped[str | None] = mapped_column(String(16), nullable=True)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)
    rule: Mapped[str] = mapped_column(String(200), default="")
    warning: Mapped[str | None] = mapped_column(String(100), nullable=True)
    critical: Mapped[str | None] = mapped_column(String(100), nullable=True)
    arrived: Mapped[float | None] = mapped_column(Float, nullable=True)


class AlarmHistoryRow(Base):
    """Every state change, notified or not (e.g. inside a downtime)."""

    __tablename__ = "alarm_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    metric_id: Mapped[str] = mapped_column(String(400), index=True)
    time: Mapped[float] = mapped_column(Float, index=True)
    old_state: Mapped[str] = mapped_column(String(16))
    new_state: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str] = mapped_column(String(32), default="value")
    downtime_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AlarmAckRow(Base):
    """An acknowledgement as filed (CLI or web); the running engine applies new ones each round."""

    __tablename__ = "alarm_ack"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    metric_id: Mapped[str] = mapped_column(String(400), index=True)
    time: Mapped[float] = mapped_column(Float)
    author: Mapped[str] = mapped_column(String(200), default="")
    comment: Mapped[str] = mapped_column(Text, default="")


class OutboxRow(Base):
    """One message to one target; kept until delivered, retried with backoff, never dropped."""

    __tablename__ = "alarm_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created: Mapped[float] = mapped_column(Float)
    target: Mapped[str] = mapped_column(String(200), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    metric_ids: Mapped[str] = mapped_column(Text, default="[]")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[float] = mapped_column(Float, index=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)


@dataclass(frozen=True)
class OutboxMessage:
    """A rendered message for one target, before it has an outbox id."""

    target: str
    severity: str
    subject: str
    body: str
    metric_ids: tuple[str, ...]


@dataclass(frozen=True)
class Pending:
    """An outbox row that is due for (re)delivery."""

    id: int
    target: str
    subject: str
    body: str
    attempts: int
    next_attempt: float


_FIELDS = [f.name for f in fields(MetricRecord)]


def record_to_row(rec: MetricRecord) -> dict[str, Any]:
    """The column values of a record (``changes`` as JSON)."""
    row = {name: getattr(rec, name) for name in _FIELDS}
    row["changes"] = json.dumps(list(rec.changes))
    return row


def row_to_record(row: Mapping[Any, Any]) -> MetricRecord:
    """The record a row stores."""
    values = {name: row[name] for name in _FIELDS if name != "changes"}
    return MetricRecord(**values, changes=tuple(json.loads(row["changes"] or "[]")))


def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    table = _table(AlarmStateRow)
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        stmt = insert(table)
        cols = {c: stmt.excluded[c] for c in _FIELDS if c != "metric_id"}
        for chunk in range(0, len(rows), 5000):
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["metric_id"], set_=cols),
                rows[chunk : chunk + 5000],
            )
        return
    for row in rows:  # other databases: delete + insert, still inside the caller's transaction
        conn.execute(table.delete().where(table.c.metric_id == row["metric_id"]))
        conn.execute(table.insert(), row)


def write(
    conn: Connection,
    records: Iterable[MetricRecord],
    transitions: Sequence[Transition] = (),
    messages: Sequence[OutboxMessage] = (),
    now: float = 0.0,
) -> None:
    """Write a round's records, history and outbox messages inside the caller's transaction."""
    rows = [record_to_row(r) for r in records]
    if rows:
        _upsert(conn, rows)
    if transitions:
        conn.execute(
            _table(AlarmHistoryRow).insert(),
            [
                {
                    "metric_id": t.metric_id,
                    "time": t.time,
                    "old_state": t.old,
                    "new_state": t.new,
                    "value": t.value,
                    "reason": t.reason,
                    "downtime_id": t.downtime_id,
                }
                for t in transitions
            ],
        )
    if messages:
        conn.execute(_table(OutboxRow).insert(), [_outbox_row(m, now) for m in messages])


def _outbox_row(m: OutboxMessage, now: float) -> dict[str, Any]:
    return {
        "created": now,
        "target": m.target,
        "severity": m.severity,
        "subject": m.subject,
        "body": m.body,
        "metric_ids": json.dumps(list(m.metric_ids)),
        "attempts": 0,
        "next_attempt": now,
        "last_error": "",
        "delivered_at": None,
    }


class AlarmStore:
    """Reads and writes the alarm tables on one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(self) -> dict[str, MetricRecord]:
        """Every persisted record, by metric id."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(_table(AlarmStateRow))).mappings().all()
        return {r["metric_id"]: row_to_record(r) for r in rows}

    def commit(
        self,
        records: Iterable[MetricRecord],
        transitions: Sequence[Transition] = (),
        messages: Sequence[OutboxMessage] = (),
        now: float = 0.0,
    ) -> None:
        """Write a round's records, history and outbox messages in one transaction."""
        with self.engine.begin() as conn:
            write(conn, records, transitions, messages, now)

    # -- acknowledgements ----------------------------------------------------------------------------
    def file_ack(self, metric_id: str, author: str, comment: str, now: float) -> MetricRecord:
        """Acknowledge a metric's problem: raise LookupError/ValueError when unknown or OK."""
        from alarms.engine import Engine as AlarmEngine

        with self.engine.begin() as conn:
            row = (
                conn.execute(select(_table(AlarmStateRow)).where(AlarmStateRow.metric_id == metric_id))
                .mappings()
                .first()
            )
            if row is None:
                raise LookupError(f"{metric_id} has no alarm state (no rule matches it, or no value yet)")
            rec = AlarmEngine.acknowledge(row_to_record(row), author, comment)
            conn.execute(
                _table(AlarmAckRow).insert(),
                {"metric_id": metric_id, "time": now, "author": author, "comment": comment},
            )
            _upsert(conn, [record_to_row(rec)])
        return rec

    def acks_after(self, ack_id: int) -> list[tuple[int, str, str, str]]:
        """Acks filed after ``ack_id``: (id, metric id, author, comment)."""
        t = _table(AlarmAckRow)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.id, t.c.metric_id, t.c.author, t.c.comment).where(t.c.id > ack_id).order_by(t.c.id)
            ).all()
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    def last_ack_id(self) -> int:
        """The newest ack's id (0 when none)."""
        with self.engine.connect() as conn:
            got = conn.execute(select(AlarmAckRow.id).order_by(AlarmAckRow.id.desc()).limit(1)).scalar()
        return int(got or 0)

    # -- outbox --------------------------------------------------------------------------------------
    def due(self, now: float) -> list[Pending]:
        """Undelivered messages, oldest first, of every target whose oldest undelivered one is due."""
        t = _table(OutboxRow)
        q = (
            select(t.c.id, t.c.target, t.c.subject, t.c.body, t.c.attempts, t.c.next_attempt)
            .where(t.c.delivered_at.is_(None))
            .order_by(t.c.id)
        )
        with self.engine.connect() as conn:
            rows = [Pending(int(r[0]), r[1], r[2], r[3], int(r[4]), float(r[5])) for r in conn.execute(q)]
        first: dict[str, float] = {}
        for p in rows:
            first.setdefault(p.target, p.next_attempt)
        return [p for p in rows if first[p.target] <= now]

    def delivered(self, msg_id: int, now: float) -> None:
        """Mark a message delivered (committed at once, so a crash right after cannot resend it)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(OutboxRow)
                .where(OutboxRow.id == msg_id)
                .values(delivered_at=now, attempts=OutboxRow.attempts + 1)
            )

    def failed(self, msg_id: int, error: str, retry_at: float) -> None:
        """Record a failed attempt and when to try again."""
        with self.engine.begin() as conn:
            conn.execute(
                update(OutboxRow)
                .where(OutboxRow.id == msg_id)
                .values(attempts=OutboxRow.attempts + 1, last_error=error[:2000], next_attempt=retry_at)
            )

    def undelivered(self) -> int:
        """How many messages wait for delivery."""
        with self.engine.connect() as conn:
            return len(conn.execute(select(OutboxRow.id).where(OutboxRow.delivered_at.is_(None))).all())


def to_metric_state(rec: MetricRecord) -> MetricState:
    """The web/CLI view of a record: ``warning``/``critical`` are the ranges the engine judges by."""
    return MetricState(
        metric_id=rec.metric_id,
        state=rec.state,
        since=rec.since,
        value=rec.value,
        time=rec.time,
        pending=rec.pending,
        in_downtime=rec.downtime_id is not None,
        downtime_id=rec.downtime_id,
        acknowledged=rec.acked,
        ack_comment=rec.ack_comment,
        ack_author=rec.ack_author,
        flapping=rec.flapping,
        stale=rec.stale,
        # the effective ranges; a record never evaluated by the engine (no rule name) has only its defaults
        warning=rec.warning if rec.rule else rec.spec_warning,
        critical=rec.critical if rec.rule else rec.spec_critical,
        rule=rec.rule,
        arrived=rec.arrived,
    )


def current_states(engine: Engine) -> list[MetricState]:
    """Every metric's alarm state as last persisted, sorted by metric id (what the web shows)."""
    return [to_metric_state(r) for _, r in sorted(AlarmStore(engine).load().items())]

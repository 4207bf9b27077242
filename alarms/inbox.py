"""The alarm inbox: how collectors that do not evaluate alarms hand their values to the one that does.

In a scale-out (``rexmon run --shard I/N`` on several hosts sharing one database) exactly one host sets
``[scheduler] evaluate_alarms = true``. Every other host gets an :class:`InboxSink`, which appends its
archived observations to the ``alarm_inbox`` table, one transaction per round. The evaluating host's
``AlarmPipeline`` drains the inbox oldest first in bounded chunks (:func:`claim`) and deletes the rows it
evaluated (:func:`delete`) in the transaction that commits the resulting states and outbox messages, so
a crash of either side neither loses nor double-counts a value. Data still flows one way: collectors
only write the inbox, the evaluator only reads and deletes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import BigInteger, Float, Integer, String, Table, select
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as DBEngine
from sqlalchemy.orm import Mapped, mapped_column

from alarms.catalogue import CatalogueWriter
from alarms.observation import Observation
from downtime.db import Base

log = logging.getLogger(__name__)
#: inbox rows evaluated per transaction (bounded, so one round's commit stays small)
CHUNK = 5000
#: ids per DELETE statement (far below every database's bound-parameter limit)
_DELETE_BATCH = 900


class AlarmInboxRow(Base):
    """One archived value from a collector that does not evaluate alarms (revision ``0004_alarm_inbox``)."""

    __tablename__ = "alarm_inbox"
    # BIGINT on PostgreSQL (a busy inbox outlives 2^31 ids); INTEGER on SQLite, where only that is a rowid
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    metric_id: Mapped[str] = mapped_column(String(400))
    time: Mapped[float] = mapped_column(Float)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    ds_type: Mapped[str] = mapped_column(String(16))
    interval: Mapped[float] = mapped_column(Float)
    warning: Mapped[str | None] = mapped_column(String(100), nullable=True)
    critical: Mapped[str | None] = mapped_column(String(100), nullable=True)
    arrived: Mapped[float] = mapped_column(Float)


def _table() -> Table:
    return cast(Table, AlarmInboxRow.__table__)


@dataclass(frozen=True)
class Claimed:
    """A chunk of inbox rows taken for evaluation: their ids (to delete) and their observations."""

    ids: tuple[int, ...]
    observations: tuple[Observation, ...]


def _row(obs: Observation, now: float) -> dict[str, Any]:
    return {
        "metric_id": obs.metric_id,
        "time": obs.time,
        "value": obs.value,
        "ds_type": obs.ds_type,
        "interval": obs.interval,
        "warning": obs.warning,
        "critical": obs.critical,
        "arrived": now if obs.arrived is None else obs.arrived,
    }


def append(conn: Connection, observations: Sequence[Observation], now: float) -> None:
    """Add observations to the inbox inside the caller's transaction (``arrived`` defaults to ``now``)."""
    if observations:
        conn.execute(_table().insert(), [_row(o, now) for o in observations])


def claim(conn: Connection, limit: int = CHUNK) -> Claimed:
    """The oldest ``limit`` rows, locked for the caller's transaction.

    On PostgreSQL ``FOR UPDATE SKIP LOCKED``: rows another transaction holds are left to it rather than
    waited for. SQLite has one writer at a time, so a plain ordered SELECT is enough there.
    """
    t = _table()
    q = select(t).order_by(t.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    rows = conn.execute(q).mappings().all()
    observations = tuple(
        Observation(
            r["metric_id"],
            float(r["time"]),
            None if r["value"] is None else float(r["value"]),
            r["ds_type"],
            float(r["interval"]),
            r["warning"],
            r["critical"],
            float(r["arrived"]),
        )
        for r in rows
    )
    return Claimed(tuple(int(r["id"]) for r in rows), observations)


def delete(conn: Connection, ids: Sequence[int]) -> None:
    """Remove evaluated rows inside the caller's transaction (the one committing their outcome)."""
    t = _table()
    for i in range(0, len(ids), _DELETE_BATCH):
        conn.execute(t.delete().where(t.c.id.in_(ids[i : i + _DELETE_BATCH])))


def backlog(db: DBEngine) -> int:
    """How many values wait in the inbox."""
    from sqlalchemy import func

    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(_table())).scalar() or 0)


class InboxSink:
    """The ``AlarmSink`` of a collector with ``evaluate_alarms = false``: it only fills the inbox."""

    def __init__(self, db: DBEngine) -> None:
        self.db = db
        self.catalogue = CatalogueWriter(db)

    def observe(self, observations: Sequence[Observation], now: float) -> None:
        """Append a round's values to the inbox, and their shape to the catalogue, in one transaction."""
        if not observations:
            return
        with self.db.begin() as conn:
            append(conn, observations, now)
            shapes = self.catalogue.note(conn, observations, now)
        self.catalogue.written(shapes)
        log.debug("alarm inbox: %d value(s) queued for the evaluating host", len(observations))

    def tick(self, now: float) -> None:
        """Nothing: staleness, downtimes and delivery are the evaluating host's work."""

    def close(self) -> None:
        """Release the database connections."""
        self.db.dispose()

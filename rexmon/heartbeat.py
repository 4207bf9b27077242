"""The collector's heartbeat in the database: one row per collector, rewritten every writer round.

``rexmon web`` and ``rexmon watchdog`` (rexmon/watchdog.py) read these rows to tell when a collector has
stopped; ``watchdog_state`` holds what the watchers last announced, so two watchers never send the same
news twice. Both tables come from revision ``0005_heartbeat``.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import cast

from sqlalchemy import BigInteger, Float, Integer, String, Table, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from downtime.db import Base

log = logging.getLogger(__name__)


class CollectorHeartbeat(Base):
    """The last sign of life of one collector (``rexmon run``, or one shard of it)."""

    __tablename__ = "collector_heartbeat"

    #: "all" for an unsharded collector, else the shard "I/N"
    collector: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(64))
    #: epoch seconds the process started
    started: Mapped[float] = mapped_column(Float)
    #: epoch seconds of the last completed writer round
    beat: Mapped[float] = mapped_column(Float)
    round_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    rounds: Mapped[int] = mapped_column(BigInteger, default=0)


class WatchdogState(Base):
    """What the watchers last announced about one collector: ``up`` or ``down``."""

    __tablename__ = "watchdog_state"

    collector: Mapped[str] = mapped_column(String(100), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    #: epoch seconds of the transition
    changed: Mapped[float] = mapped_column(Float)
    #: the heartbeat time the transition was judged on
    beat: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: the watcher (host:pid) that won the transition and sends its notification
    claimed_by: Mapped[str | None] = mapped_column(String(300), nullable=True)
    claimed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: epoch seconds the notification was delivered; NULL while it is still owed
    notified: Mapped[float | None] = mapped_column(Float, nullable=True)


@dataclass(frozen=True)
class Beat:
    """One heartbeat as read back: who, where, and when it last completed a round."""

    collector: str
    host: str
    pid: int
    version: str
    started: float
    beat: float
    round_seconds: float | None
    rounds: int


def collector_name(shard: str | None) -> str:
    """The heartbeat key of a collector: its shard ``I/N``, or ``all`` when it runs every slurper."""
    return shard if shard else "all"


class HeartbeatWriter:
    """Records one collector's rounds; the first :meth:`beat` inserts its row, later ones update it."""

    def __init__(self, engine: Engine, collector: str, version: str, started: float) -> None:
        self.engine = engine
        self.collector = collector
        self.host = socket.getfqdn()
        self.pid = os.getpid()
        self.version = version
        self.started = started
        self._rounds = 0

    def beat(self, now: float, round_seconds: float | None) -> None:
        """Record a completed round at ``now`` (raises SQLAlchemy errors: the caller logs them once)."""
        self._rounds += 1
        values = {
            "host": self.host,
            "pid": self.pid,
            "version": self.version,
            "started": self.started,
            "beat": now,
            "round_seconds": round_seconds,
            "rounds": self._rounds,
        }
        table = cast(Table, CollectorHeartbeat.__table__)
        with self.engine.begin() as conn:
            stmt = update(table).where(table.c.collector == self.collector).values(**values)
            if conn.execute(stmt).rowcount:
                return
        try:
            with self.engine.begin() as conn:
                conn.execute(table.insert().values(collector=self.collector, **values))
        except IntegrityError:  # another process inserted it first (two collectors on one shard?)
            with self.engine.begin() as conn:
                conn.execute(update(table).where(table.c.collector == self.collector).values(**values))


def beats(engine: Engine) -> list[Beat]:
    """Every collector's last heartbeat, by collector name."""
    with Session(engine) as session:
        rows = session.scalars(select(CollectorHeartbeat).order_by(CollectorHeartbeat.collector)).all()
        return [
            Beat(r.collector, r.host, r.pid, r.version, r.started, r.beat, r.round_seconds, r.rounds)
            for r in rows
        ]

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
from pathlib import Path
from typing import Any, cast

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


def sd_notify(state: str, address: str | None = None) -> bool:
    """Send ``state`` (``READY=1``, ``WATCHDOG=1``) to systemd over $NOTIFY_SOCKET; False if not under it.

    The whole sd_notify protocol for these two messages: one datagram to a unix socket, whose name
    starting with ``@`` is in the abstract namespace.
    """
    address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(target)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("systemd notify %s to %s failed: %s", state, address, exc)
        return False
    return True


class SignsOfLife:
    """What the collector's writer does after every round: tell systemd, the database and /metrics.

    systemd's watchdog gets ``WATCHDOG=1`` every round, so a writer that hangs stops it and systemd
    restarts the collector. The database heartbeat is written every round too, but at most once per
    ``every`` seconds (a busy writer runs a round a second); a database outage is logged once and the
    beats resume when it answers.
    """

    def __init__(
        self,
        database_url: str,
        collector: str,
        *,
        journal_dir: Path | None = None,
        every: float = 5.0,
        started: float | None = None,
    ) -> None:
        from rexmon import __version__

        self.database_url = database_url
        self.journal_dir = journal_dir
        self.collector = collector
        self.every = every
        self.started = started
        self.version = __version__
        self._writer: HeartbeatWriter | None = None
        self._last = float("-inf")
        self._failing = False
        self._round_started: float | None = None

    @classmethod
    def of(cls, config: Any, shard: str | None) -> SignsOfLife:
        """The signs of life of the collector running ``shard`` under ``config`` (a rexmon Config)."""
        # a quarter of the watchdog's max_age between beats (5 s at most): a live collector is never late
        every = min(5.0, config.watchdog.max_age / 4)
        journal = config.state_dir / "journal"
        return cls(config.database_url, collector_name(shard), journal_dir=journal, every=every)

    def ready(self) -> None:
        """Tell systemd that the collector has started (Type=notify)."""
        sd_notify("READY=1")

    def ping(self, queue_depth: int = 0) -> None:
        """Called by the writer thread after each round: ``WATCHDOG=1`` to systemd and the /metrics gauges.

        Nothing here waits on the database, so only a stuck writer (never a slow database) stops the
        pings that keep systemd from restarting the collector.
        """
        from rexmon import selfmetrics

        selfmetrics.WRITER_ROUNDS.inc()
        selfmetrics.WRITER_QUEUE.set(queue_depth)
        selfmetrics.JOURNAL_BYTES.set(self.journal_bytes())
        sd_notify("WATCHDOG=1")

    def round(self, now: float, queue_depth: int = 0) -> None:
        """A writer round is done at ``now`` (epoch seconds): record the database heartbeat (throttled).

        ``queue_depth`` is accepted for the callers that pass it; the writer's :meth:`ping` reports it.
        """
        took = None if self._round_started is None else max(0.0, now - self._round_started)
        self._round_started = now
        if now - self._last < self.every:
            return
        self._last = now
        try:
            self._beat(now, took)
        except Exception as exc:  # the database is away: archiving goes on, say it once
            if not self._failing:
                log.error("heartbeat: cannot record it in the database (%s: %s)", type(exc).__name__, exc)
            self._failing = True
            return
        if self._failing:
            log.warning("heartbeat: the database answers again")
        self._failing = False

    def journal_bytes(self) -> int:
        """The size of the update journal(s) on disk (rrdcached's writes not yet flushed to the files)."""
        if self.journal_dir is None:
            return 0
        try:
            return sum(e.stat().st_size for e in os.scandir(self.journal_dir) if e.is_file())
        except OSError:  # not created yet (no rrdcached, or no write so far)
            return 0

    def _beat(self, now: float, took: float | None) -> None:
        if self._writer is None:
            from downtime.db import make_engine, upgrade

            engine = make_engine(self.database_url)
            upgrade(engine)
            self._writer = HeartbeatWriter(engine, self.collector, self.version, self.started or now)
        self._writer.beat(now, took)

    def close(self) -> None:
        """Release the database connection."""
        if self._writer is not None:
            self._writer.engine.dispose()
            self._writer = None

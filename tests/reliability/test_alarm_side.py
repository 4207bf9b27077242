"""The alarm side stalls (a locked table, a target answering a byte at a time): archiving goes on."""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alarms.notify import Deliverer, Target
from alarms.pipeline import build, database
from alarms.store import AlarmStore, OutboxMessage
from rexmon.config import Config, load
from rexmon.service import Service
from rrd.archive import Archive
from tests.alarms.conftest import HTTPReceiver
from tests.fixtures.postgres import PostgresServer, start_postgres
from tests.reliability.helpers import munin_plugin, wait_for

#: how long the tests hold a lock on the alarm tables (the issue's reproduction held it 60 s)
LOCK_SECONDS = 60
#: archived within this many seconds of being read, lock or no lock (slurpers run every second)
FRESH = 6.0


def _plugin(directory: Path, value_file: Path) -> Path:
    return munin_plugin(
        directory,
        "temp",
        'if [ "$1" = config ]; then printf "temp.label temp\\ntemp.critical 90\\n"; exit 0; fi\n'
        f'echo "temp.value $(cat {value_file})"\n',
    )


def _config(write_config: Callable[..., Path], tmp_path: Path, db_url: str, *targets: str) -> Config:
    value = tmp_path / "value.txt"
    value.write_text("95\n")
    plugin = _plugin(tmp_path / "plugins", value)
    notify = "".join(f'[[notify]]\nname = "t{i}"\nurl = "{u}"\n' for i, u in enumerate(targets))
    return load(write_config(
        f'[database]\nurl = "{db_url}"\n'
        f'[[slurper]]\nid = "room"\ntype = "munin"\ninterval = 1\nplugin = "{plugin}"\n'
        # stale after 5 min, not 3 intervals (3 s): a round held 10 s by lock_timeout is not "no value"
        '[[alarm]]\nmatch = ["room/*"]\ncritical = "~:90"\nstale = "5m"\n' + notify
    ))  # fmt: skip


def _archived_soon(archive: Archive, value_file: Path, value: float) -> float:
    """Write ``value`` for the plugin; seconds until the archive holds it (fails after FRESH s)."""
    value_file.write_text(f"{value}\n")
    t0 = time.monotonic()
    wait_for(lambda: (archive.last("room/temp") or (0, None))[1] == value, FRESH, f"{value} archived")
    return time.monotonic() - t0


def _archive_through(service: Service, archive: Archive, value_file: Path, seconds: float) -> list[float]:
    """Change the value every few seconds for ``seconds``; how long each took to reach the archive."""
    delays = []
    end = time.monotonic() + seconds - FRESH - 2  # the last change is checked within ``seconds``
    value = 10.0
    while time.monotonic() < end:
        delays.append(_archived_soon(archive, value_file, value))
        value += 1
        time.sleep(2)
    return delays


def _backlog(archive: Archive) -> float:
    """The alarm backlog as archived by the collector (rexmon/alarms.backlog)."""
    got = archive.last("rexmon/alarms.backlog")
    return -1.0 if got is None or got[1] is None else got[1]


@pytest.fixture
def receiver() -> Iterator[HTTPReceiver]:
    r = HTTPReceiver()
    yield r
    r.close()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    base = Path(tempfile.mkdtemp(prefix="rexmon-pg-lock-"))
    base.chmod(0o755)
    pg = start_postgres(base)
    yield pg
    pg.stop()
    shutil.rmtree(base, ignore_errors=True)


class TableLock:
    """A session holding ACCESS EXCLUSIVE on alarm_state for ``seconds`` (what a careless ``LOCK TABLE``
    or a long ``ALTER TABLE`` by an operator does), from a thread of the test."""

    def __init__(self, pg: PostgresServer, seconds: float) -> None:
        import psycopg2

        self.conn = psycopg2.connect(host="127.0.0.1", port=pg.port, user=pg.user, dbname="postgres")
        with self.conn.cursor() as cur:
            cur.execute("LOCK TABLE alarm_state IN ACCESS EXCLUSIVE MODE")  # psycopg2 has begun a transaction
        self.thread = threading.Thread(target=self._hold, args=(seconds,), daemon=True)
        self.release = threading.Event()
        self.thread.start()

    def _hold(self, seconds: float) -> None:
        import psycopg2

        self.release.wait(seconds)
        with contextlib.suppress(psycopg2.Error):  # the server may be gone already (a failed test's teardown)
            self.conn.rollback()
        self.conn.close()

    def held(self) -> bool:
        return self.thread.is_alive()


def test_postgresql_table_lock_held_60_s(
    tmp_path: Path, write_config: Callable[..., Path], receiver: HTTPReceiver, own_postgres: PostgresServer,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """A PostgreSQL lock on the alarm state held 60 s under `rexmon run`: every value reaches the archive within seconds, one log line (lock_timeout), alarms resume after."""  # noqa: E501
    caplog.set_level(logging.INFO)
    cfg = _config(write_config, tmp_path, own_postgres.url(), receiver.url())
    service = Service(cfg, alarms=build(cfg), flush_interval=0.3)
    archive = Archive(cfg.rrd_dir, cfg.archive.step)
    service.start()
    try:
        wait_for(lambda: len(receiver.bodies) == 1, 60, "the CRITICAL notification")
        lock = TableLock(own_postgres, LOCK_SECONDS)
        started = time.monotonic()
        delays = _archive_through(service, archive, tmp_path / "value.txt", LOCK_SECONDS - 5)
        backlog_held = _backlog(archive)
        assert lock.held(), "the lock was held throughout"
        lock.thread.join(LOCK_SECONDS + 30)
        held = time.monotonic() - started
        wait_for(lambda: "evaluation resumed" in caplog.text, 60, "evaluation resuming after the lock")
        wait_for(lambda: len(receiver.bodies) == 2, 60, "the RECOVERY once the lock is gone")
        wait_for(lambda: _backlog(archive) == 0, 30, "the alarm backlog drained")
    finally:
        service.stop()
        archive.close()
    assert held >= LOCK_SECONDS - 1
    assert backlog_held > 0  # the back-pressure is visible in rexmon/alarms.backlog while the lock is held
    assert len(delays) >= 8 and max(delays) < FRESH, delays
    assert caplog.text.count("alarms: evaluation failed") + caplog.text.count("alarms: tick failed") == 1
    assert "lock timeout" in caplog.text  # PostgreSQL's own words, from lock_timeout
    assert "RECOVERY room/temp" in receiver.bodies[1]["title"]


def test_sqlite_lock_held_60_s(
    tmp_path: Path,
    write_config: Callable[..., Path],
    receiver: HTTPReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An SQLite write lock (BEGIN EXCLUSIVE) held 60 s under `rexmon run`: every value reaches the archive within seconds, one log line (busy_timeout), alarms resume after."""  # noqa: E501
    caplog.set_level(logging.INFO)
    db = tmp_path / "rexmon.db"
    cfg = _config(write_config, tmp_path, f"sqlite:///{db}", receiver.url())
    service = Service(cfg, alarms=build(cfg), flush_interval=0.3)
    archive = Archive(cfg.rrd_dir, cfg.archive.step)
    service.start()
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db, isolation_level=None, timeout=60)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(LOCK_SECONDS)
        conn.execute("ROLLBACK")
        conn.close()

    try:
        wait_for(lambda: len(receiver.bodies) == 1, 60, "the CRITICAL notification")
        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        assert locked.wait(30)
        started = time.monotonic()
        delays = _archive_through(service, archive, tmp_path / "value.txt", LOCK_SECONDS - 5)
        backlog_held = _backlog(archive)
        assert holder.is_alive(), "the lock was held throughout"
        holder.join(LOCK_SECONDS + 30)
        held = time.monotonic() - started
        wait_for(lambda: "evaluation resumed" in caplog.text, 60, "evaluation resuming after the lock")
        wait_for(lambda: len(receiver.bodies) == 2, 60, "the RECOVERY once the lock is gone")
        wait_for(lambda: _backlog(archive) == 0, 30, "the alarm backlog drained")
    finally:
        release.set()
        service.stop()
        archive.close()
    assert held >= LOCK_SECONDS - 1
    assert backlog_held > 0  # the back-pressure is visible in rexmon/alarms.backlog while the lock is held
    assert len(delays) >= 8 and max(delays) < FRESH, delays
    assert caplog.text.count("alarms: evaluation failed") + caplog.text.count("alarms: tick failed") == 1
    assert "database is locked" in caplog.text
    assert "RECOVERY room/temp" in receiver.bodies[1]["title"]


class DripServer:
    """A loopback HTTP server that reads a request and answers one byte every ``every`` seconds (a
    overloaded proxy, a half-dead webhook receiver): no socket timeout ever fires."""

    def __init__(self, status: int = 200, every: float = 2.0) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        self.every = every
        self.requests = 0
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.requests += 1
            for i in range(len(self.answer)):
                if self.closed.wait(self.every):
                    return
                try:
                    conn.sendall(self.answer[i : i + 1])
                except OSError:
                    return

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


@pytest.fixture
def drip() -> Iterator[Callable[..., DripServer]]:
    made: list[DripServer] = []

    def _make(status: int = 200, every: float = 2.0) -> DripServer:
        made.append(DripServer(status, every))
        return made[-1]

    yield _make
    for d in made:
        d.close()


def test_slow_notification_target(
    tmp_path: Path, write_config: Callable[..., Path], receiver: HTTPReceiver, drip: Callable[..., DripServer]
) -> None:
    """A notification target answering one byte every 2 s: values keep reaching the archive within seconds, and another target gets its message at once."""  # noqa: E501
    slow = drip()
    cfg = _config(write_config, tmp_path, f"sqlite:///{tmp_path / 'rexmon.db'}", slow.url(), receiver.url())
    service = Service(cfg, alarms=build(cfg), flush_interval=0.3)
    archive = Archive(cfg.rrd_dir, cfg.archive.step)
    service.start()
    try:
        wait_for(lambda: slow.requests == 1, 60, "the CRITICAL on its way to the slow target")
        wait_for(lambda: len(receiver.bodies) == 1, 10, "the CRITICAL at the other target")
        delays = _archive_through(service, archive, tmp_path / "value.txt", 40)
        assert slow.requests == 1, "the slow target's attempt is still running, and is not repeated"
    finally:
        slow.close()
        service.stop()
        archive.close()
    assert len(delays) >= 6 and max(delays) < FRESH, delays
    assert "CRITICAL room/temp" in receiver.bodies[0]["title"]


def test_retry_backoff_counts_from_the_end_of_the_attempt(
    tmp_path: Path, drip: Callable[..., DripServer]
) -> None:
    """A delivery attempt that takes 12 s to fail (HTTP 500 a byte every 0.2 s): the retry is due the backoff after the attempt ended, not after it started."""  # noqa: E501
    slow = drip(status=500, every=0.2)  # the status line and headers: ~60 bytes, about 12 s
    db = database(f"sqlite:///{tmp_path / 'rexmon.db'}")
    store = AlarmStore(db)
    store.commit([], messages=[OutboxMessage("slow", "CRITICAL", "subject", "body\n", ("m/x",))], now=1000.0)
    target = Target("slow", slow.url(), frozenset(), frozenset({"CRITICAL"}))
    deliverer = Deliverer(store, [target], backoff=30.0)
    t0 = time.monotonic()
    assert deliverer.deliver(1000.0) == 0
    took = time.monotonic() - t0
    [pending] = store.due(10_000.0)
    db.dispose()
    assert took > 8, took
    assert pending.attempts == 1
    assert pending.next_attempt >= 1000.0 + took - 1 + 30.0, (pending.next_attempt, took)
    assert pending.next_attempt <= 1000.0 + took + 1 + 30.0, (pending.next_attempt, took)

"""The demo's dCache billing database: a loopback PostgreSQL with dCache's fine-grained tables, fed live.

Started only where PostgreSQL's server binaries are installed (Debian: the ``postgresql`` package) and
psycopg is importable; otherwise the demo skips the dcache slurper and says so in one line. The tables
are those of a fresh dCache (timestamptz, bigint, the datestamp indexes; tests/data/dcache/fresh.sql
holds the whole real DDL). A thread commits rows every few seconds as dCache's billing cell does: in
batches, some late, now and then one twice, movers with their door rows, tape flushes and restores.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
#: history written at start, so the slurper's backfill has something to read
BACKFILL_HOURS = 3
DDL = """
CREATE TABLE billinginfo (client varchar(256), initiator varchar(256), isnew boolean,
    protocol varchar(256), transfersize bigint, fullsize bigint, storageclass varchar(256),
    connectiontime bigint, action varchar(256), cellname varchar(256),
    datestamp timestamp with time zone, errorcode integer, errormessage varchar(8000),
    pnfsid varchar(36), transaction varchar(256), p2p boolean, fqan varchar(256), mappeduid integer,
    mappedgid integer, owner varchar(256));
CREATE TABLE doorinfo (client varchar(256), mappedgid integer, mappeduid integer, owner varchar(256),
    path varchar(8000), queuedtime bigint, connectiontime bigint, action varchar(256), cellname varchar(256),
    datestamp timestamp with time zone, errorcode integer, errormessage varchar(8000), pnfsid varchar(36),
    transaction varchar(256), fqan varchar(256));
CREATE TABLE storageinfo (queuedtime bigint, fullsize bigint, storageclass varchar(256),
    connectiontime bigint, action varchar(256), cellname varchar(256),
    datestamp timestamp with time zone, errorcode integer,
    errormessage varchar(8000), pnfsid varchar(36), transaction varchar(256));
CREATE TABLE hitinfo (filecached boolean, action varchar(256), cellname varchar(256),
    datestamp timestamp with time zone, errorcode integer, errormessage varchar(8000), pnfsid varchar(36),
    transaction varchar(256));
CREATE INDEX billinginfo_date_idx ON billinginfo USING btree (datestamp);
CREATE INDEX doorinfo_date_idx ON doorinfo USING btree (datestamp);
CREATE INDEX storageinfo_date_idx ON storageinfo USING btree (datestamp);
CREATE INDEX hitinfo_date_idx ON hitinfo USING btree (datestamp);
"""
MOVER = (
    "INSERT INTO billinginfo (datestamp, cellname, action, transaction, pnfsid, fullsize, transfersize,"
    " storageclass, isnew, client, connectiontime, errorcode, errormessage, protocol, initiator, p2p, fqan,"
    " mappeduid, mappedgid, owner) VALUES (%s, %s, 'transfer', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " %s, %s, %s, 41000, 4100, NULL)"
)
DOOR = (
    "INSERT INTO doorinfo (datestamp, cellname, action, transaction, pnfsid, client, path, queuedtime,"
    " connectiontime, errorcode, errormessage, fqan) VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s, %s)"
)
TAPE = (
    "INSERT INTO storageinfo (datestamp, cellname, action, transaction, pnfsid, fullsize, storageclass,"
    " queuedtime, connectiontime, errorcode, errormessage)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '')"
)
DOORS = {"GFtp-2.0": "GFTP-dcdoor01", "Xrootd-5.0": "Xrootd-dcdoor03", "Https-1.1": "WebDAV-dcdoor02",
         "DCap-3.0": "DCap-dcdoor04", "NFS4-4.1": "NFS-dcdoor05"}  # fmt: skip
VOS = (("/atlas/Role=production", "atlas:datadisk@osm"), ("/cms", "cms:default@osm"), (None, "lhcb:user@osm"))
ERRORS = ((666, "Transfer was killed"), (10004, "Post-processing failed: File size mismatch"),
          (10006, "No connection from client after 300 seconds. Giving up."))  # fmt: skip


def server_binaries() -> Path | None:
    """The newest PostgreSQL server bin directory with initdb and postgres, if installed."""
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").exists() and (d / "postgres").exists():
            return d
    for name in ("initdb", "postgres"):
        if not shutil.which(name):
            return None
    return Path(shutil.which("initdb") or "").parent


class BillingSim:
    """A loopback PostgreSQL holding a billing database, and the thread that writes to it."""

    def __init__(self, directory: Path, seed: int) -> None:
        self.dir = directory
        self.rng = random.Random(seed)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.rows = 0
        self._n = 0
        self._temporary = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, name="billing-sim", daemon=True)

    # -- the server ----------------------------------------------------------------------------------
    def start(self, bin_dir: Path) -> BillingSim:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if as_postgres:
            # PostgreSQL refuses to run as root, and the postgres user may not enter the demo directory:
            # its data goes to a directory of its own, removed on stop
            self.dir = Path(tempfile.mkdtemp(prefix="rexmon-demo-billing-"))
            self._temporary = True
            os.chmod(self.dir, 0o755)
        data = self.dir / "pgdata"
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            if as_postgres:
                pw = pwd.getpwnam("postgres")
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
                os.chown(data, pw.pw_uid, pw.pw_gid)
            subprocess.run(
                [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                 "--no-sync", "-E", "UTF8", "--locale=C"],
                check=True, capture_output=True, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        (data / "postmaster.pid").unlink(missing_ok=True)  # left by a demo that was killed
        port = _free_port()
        self.proc = subprocess.Popen(
            [*as_postgres, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={data}", "-c", "fsync=off"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self._wait(admin)
        self.url = f"postgresql://postgres@127.0.0.1:{port}/billing"
        self._create(admin)
        self._thread.start()
        return self

    def _wait(self, url: str) -> None:
        import psycopg

        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or (self.proc is not None and self.proc.poll() is not None):
                    raise RuntimeError("the demo's PostgreSQL did not start") from None
                time.sleep(0.2)

    def _create(self, admin: str) -> None:
        import psycopg

        with psycopg.connect(admin, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'billing'").fetchone():
                return  # kept from an earlier demo run in the same directory
            conn.execute("CREATE DATABASE billing")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(DDL.encode())
        now = time.time()
        start = now - BACKFILL_HOURS * 3600
        with psycopg.connect(self.url) as conn:
            while start < now:  # the hours before the demo started, 20 s apart, in one connection
                self._batch(start, late=False, conn=conn)
                start += 20

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        if self.proc is not None and self.proc.poll() is None:
            # fast shutdown (clients are disconnected), sent to the postmaster itself: runuser, when we
            # are root, does not pass signals on
            try:
                pid = int((self.dir / "pgdata" / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGINT)
            except (OSError, ValueError, IndexError):
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._temporary:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- the rows ------------------------------------------------------------------------------------
    def _feed(self) -> None:
        while not self._stop.wait(5.0):
            try:
                self._batch(time.time(), late=True)
            except Exception:  # the demo goes on without new rows rather than crash
                log.exception("billing simulator: a batch failed")

    def _batch(self, now: float, *, late: bool, conn: Any = None) -> None:
        import psycopg

        hour = datetime.fromtimestamp(now, UTC).hour
        busy = 1.0 + 0.8 * (8 <= hour < 20)
        movers: list[tuple[Any, ...]] = []
        doors: list[tuple[Any, ...]] = []
        tapes: list[tuple[Any, ...]] = []
        for _ in range(max(1, int(self.rng.gauss(6 * busy, 2)))):
            # a batch becomes visible at once; now and then it is a late one from minutes ago
            at = now - self.rng.uniform(0, 4) - (240 if late and self.rng.random() < 0.05 else 0)
            self._mover(at, movers, doors)
        if self.rng.random() < 0.02:
            movers.append(movers[0])  # a duplicate delivery
        if self.rng.random() < 0.1:
            self._tape(now, tapes)
        with contextlib.ExitStack() as stack:
            if conn is None:
                conn = stack.enter_context(psycopg.connect(self.url))
            with conn.transaction(), conn.cursor() as cur:  # one batch becomes visible at once
                cur.executemany(MOVER, movers)
                cur.executemany(DOOR, doors)
                if tapes:
                    cur.executemany(TAPE, tapes)
        self.rows += len(movers) + len(doors) + len(tapes)

    def _mover(self, at: float, movers: list[tuple[Any, ...]], doors: list[tuple[Any, ...]]) -> None:
        rng, self._n = self.rng, self._n + 1
        n = self._n
        ts = datetime.fromtimestamp(at, UTC)
        pool = f"dcpool0{rng.randint(1, 7)}_1"
        fqan, sclass = rng.choice(VOS)
        pnfsid = f"0000{n:032X}"
        size = int(rng.lognormvariate(20, 2))
        code, message = (0, "") if rng.random() > 0.03 else rng.choice(ERRORS)
        if rng.random() < 0.1:  # pool to pool
            dest = f"dcpool0{rng.randint(1, 7)}"
            initiator, protocol, p2p = f"pool:{dest}_2@{dest}Domain", "Http-1.1", True
        else:
            protocol = rng.choice(list(DOORS))
            door = DOORS[protocol]
            cell = f"{door}-AAYl{rng.randrange(16**7):07x}" if protocol in ("GFtp-2.0", "DCap-3.0") else door
            cell += f"@{door.split('-')[0].lower()}-{door.split('-')[1]}Domain"
            initiator, p2p = f"door:{cell}:{int(at * 1000)}{n % 1000:03d}", False
            doors.append((ts, cell, "request", initiator, pnfsid, f"198.51.100.{n % 250}",
                          f"/pnfs/example.org/data/{sclass.split(':')[0]}/file{n}", rng.randint(100, 90000),
                          code, message, fqan))  # fmt: skip
            if rng.random() < 0.05:
                doors.append((ts, cell, "remove", f"{initiator}-rm", pnfsid, f"198.51.100.{n % 250}",
                              f"/pnfs/example.org/data/old{n}", 12, 0, "", fqan))  # fmt: skip
        moved = -35 if rng.random() < 0.002 else size
        movers.append((ts, f"{pool}@{pool.split('_')[0]}Domain", f"pool:{pool}:{int(at * 1000)}-{n}", pnfsid,
                       size, moved, sclass, rng.random() < 0.35 and not p2p, f"198.51.100.{n % 250}",
                       rng.randint(50, 120000), code, message, protocol, initiator, p2p, fqan))  # fmt: skip

    def _tape(self, now: float, tapes: list[tuple[Any, ...]]) -> None:
        rng, self._n = self.rng, self._n + 1
        action = rng.choice(("store", "restore"))
        queued = rng.randint(1, 3 * 3600) * 1000 if action == "restore" else rng.randint(1, 600) * 1000
        moved = rng.randint(30, 600) * 1000
        created = datetime.fromtimestamp(now - (queued + moved) / 1000, UTC)
        code = 0 if rng.random() > 0.05 else 10013
        size = rng.randint(1, 20) * 2**30
        tapes.append((created, "rw-tape01_1@rw-tape01Domain", action, f"pool:rw-tape01_1:{self._n}",
                      f"0000{self._n:032X}", size, "atlas:tape@osm", queued, moved, code))  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

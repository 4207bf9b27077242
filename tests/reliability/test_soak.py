"""Soak: `rexmon run` with 1,000 slurpers for 10 minutes (REXMON_SOAK_SECONDS) under web load on loopback,
with rrdcached stopped for a minute and the alarm database locked for a minute inside it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from rrd.archive import Archive
from tests.fixtures.rrdcached import RRDCached, free_port
from tests.reliability.helpers import LAUNCH, REPO, Collector, LedgerWriter, checkpoint, wait_for
from tests.reliability.ledger import value_at

SLURPERS = 1000
INTERVAL = 10
SECONDS = int(os.environ.get("REXMON_SOAK_SECONDS", "600"))
#: how long rrdcached is away, and then how long the alarm database is locked (a minute each)
OUTAGE = min(60, SECONDS // 5)
#: warnings and errors the collector may log over the whole soak (outages included): bounded, not per run
LOG_LINES = 60
STEP = 60


def _hold_write_lock(db: Path, seconds: float, stop: threading.Event) -> None:
    """What a long write transaction by another program does to SQLite: BEGIN EXCLUSIVE, held."""
    conn = sqlite3.connect(db, isolation_level=None, timeout=60)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        stop.wait(seconds)
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def _proc_stats(pid: int) -> tuple[int, int]:
    """(RSS in KiB, open file descriptors) of a process."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture
def web_server(tmp_path: Path, plugins: Path) -> Iterator[Callable[[Path], str]]:
    procs: list[subprocess.Popen[bytes]] = []

    def _start(cfg: Path) -> str:
        listen = f"127.0.0.1:{free_port()}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), str(REPO)])}
        argv = [sys.executable, "-c", LAUNCH, "--config", str(cfg), "web", "--listen", listen]
        with (tmp_path / "web.log").open("ab") as fh:
            procs.append(subprocess.Popen(argv, cwd=REPO, env=env, stdout=fh, stderr=fh))
        url = f"http://{listen}"

        def up() -> bool:
            try:
                return requests.get(url + "/api/metrics", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, 60, "rexmon web to answer")
        return url

    yield _start
    for p in procs:
        p.terminate()
        p.wait(30)


SERIES = "/api/metrics/s0001/m0/series?period=hour"


def _load(url: str, stop: threading.Event, counts: dict[str, int], failures: list[tuple[float, str]]) -> None:
    """A bounded client loop on loopback: overview, metric list, one series, 20 requests/s at most;
    each 5xx or failed request is kept with its time (monotonic) and path."""
    session = requests.Session()
    paths = ["/", "/api/metrics", SERIES]
    while not stop.is_set() and counts["requests"] < SECONDS * 20:
        for p in paths:
            try:
                r = session.get(url + p, timeout=10)
                ok = r.status_code < 500
            except requests.RequestException:
                ok = False
            counts["ok" if ok else "errors"] += 1
            if not ok:
                failures.append((time.monotonic(), p))
            counts["requests"] += 1
        stop.wait(0.15)


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 480)  # set-up (up to 180 s for the files) + the soak + the checks
def test_soak_1000_slurpers_under_web_load(
    tmp_path: Path,
    write_config: Callable[..., Path],
    plugins: Path,
    rrdcached: Callable[[], RRDCached],
    collectors: list[Collector],
    web_server: Callable[[Path], str],
) -> None:
    """1,000 slurpers for 10 minutes with web load, rrdcached stopped for a minute and the alarm database locked for a minute: RSS and open files of `rexmon run` stay bounded, scheduling lag does not grow, the log has a bounded number of lines, no value of a checkpointing slurper is lost, the web never answers 5xx."""  # noqa: E501
    daemon = rrdcached()
    body = "".join(
        f'\n[[slurper]]\nid = "s{i:04d}"\ntype = "steady"\ninterval = {INTERVAL}\ntimeout = 5\n'
        for i in range(SLURPERS)
    )
    ledger = tmp_path / "ledger.txt"
    cfg = write_config(
        f'[archive]\nrrd_dir = "{tmp_path / "rrd"}"\nstep = {STEP}\nrrdcached = "{daemon.address}"\n'
        f'[scheduler]\nstate_dir = "{tmp_path / "state"}"\njitter = 0\nworkers = 16\n'
        f'[[slurper]]\nid = "books"\ntype = "ledger"\ninterval = 1\nsource = "{ledger}"\n'
        '[[alarm]]\nmatch = ["s0*/*"]\ncritical = "~:1"\n' + body  # m2 reads 2: CRITICAL, the rest OK
    )
    first = (int(time.time()) - 3 * 86400) // STEP * STEP
    writer = LedgerWriter(ledger, first, rate=1, tick=0.5).start()
    collector = Collector(cfg, plugins, tmp_path / "rexmon.log")
    collectors.append(collector)
    collector.start()
    assert collector.proc is not None
    pid = collector.proc.pid
    rrd = tmp_path / "rrd"
    wait_for(lambda: len(list(rrd.glob("s*/*.rrd"))) >= SLURPERS, 180, "every slurper's files")
    url = web_server(cfg)
    stop, counts = threading.Event(), {"requests": 0, "ok": 0, "errors": 0}
    failures: list[tuple[float, str]] = []
    client = threading.Thread(target=_load, args=(url, stop, counts, failures), daemon=True)
    client.start()
    samples: list[tuple[float, int, int]] = []
    started = time.monotonic()
    lock: threading.Thread | None = None
    away = [float("inf"), float("inf")]  # when rrdcached was stopped and started again (monotonic)
    faults = {"rrdcached down": SECONDS / 5, "rrdcached back": SECONDS / 5 + OUTAGE, "lock": 3 * SECONDS / 5}
    try:
        while time.monotonic() - started < SECONDS:
            assert collector.proc.poll() is None, collector.output()[-2000:]
            now = time.monotonic() - started
            samples.append((now, *_proc_stats(pid)))
            if "rrdcached down" in faults and now >= faults["rrdcached down"]:
                faults.pop("rrdcached down")
                away = [time.monotonic(), float("inf")]
                daemon.stop(kill=True)  # SIGTERM makes it flush 3,000 files first: over 20 s on a busy host
            if "rrdcached back" in faults and now >= faults["rrdcached back"]:
                faults.pop("rrdcached back")
                daemon = rrdcached()
                away[1] = time.monotonic()
            if "lock" in faults and now >= faults["lock"]:
                faults.pop("lock")
                lock = threading.Thread(target=_hold_write_lock, args=(tmp_path / "rexmon.db", OUTAGE, stop))
                lock.start()
            time.sleep(5)
    finally:
        stop.set()
        client.join(30)
        if lock is not None:
            lock.join(30)
    last = writer.stop()
    (tmp_path / "samples.tsv").write_text(
        "".join(f"{t:.0f}\t{rss}\t{fds}\n" for t, rss, fds in samples)  # seconds, RSS KiB, open files
    )
    wait_for(lambda: checkpoint(tmp_path / "state", "books") >= last, 120, "the ledger to be archived")
    assert collector.stop() == 0
    third = len(samples) // 3
    middle, end = samples[third : 2 * third], samples[2 * third :]
    rss_mid, rss_last = max(s[1] for s in middle), max(s[1] for s in end)
    fd_mid, fd_last = max(s[2] for s in middle), max(s[2] for s in end)
    trace = [(round(t), rss // 1024) for t, rss, _ in samples[::6]]  # (s, MB) every 30 s
    assert rss_last <= rss_mid * 1.2 + 20_000, trace
    assert fd_last <= fd_mid + 10, [(round(t), fds) for t, _, fds in samples[::6]]
    assert counts["ok"] > 0, counts
    # while rrdcached is away the pages, the metric list and the series read the files on disk: no 5xx at all
    assert failures == [], (away, failures)
    log = collector.output()
    noisy = [ln for ln in log.splitlines() if " WARNING " in ln or " ERROR " in ln]
    assert len(noisy) <= LOG_LINES, noisy[:80]
    assert log.count("archive: every write fails") == 1 and log.count("archive: writes succeed again") == 1
    assert "database is locked" in log and "evaluation resumed" in log
    assert "Traceback" not in log
    archive = Archive(rrd, STEP, daemon.address)
    try:
        series = archive.fetch("books/ledger", first, last)
        end_t = int(time.time())
        lag = [
            v for v in archive.fetch("rexmon/scheduler.lag", end_t - SECONDS, end_t).values if v is not None
        ]
    finally:
        archive.close()
    got = {series.start + (i + 1) * series.step: v for i, v in enumerate(series.values)}
    missing = [t for t in range(first + STEP, last + 1, STEP) if got.get(t) != value_at(t)]
    assert missing == [], missing[:20]
    half = len(lag) // 2
    assert lag and sum(lag[half:]) / max(1, len(lag) - half) <= 2 * sum(lag[:half]) / max(1, half) + 1.0, lag

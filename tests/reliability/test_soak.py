"""Soak: `rexmon run` with 1,000 slurpers for 10 minutes (REXMON_SOAK_SECONDS) under web load on loopback."""

from __future__ import annotations

import os
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
from tests.reliability.helpers import LAUNCH, REPO, Collector, wait_for

SLURPERS = 1000
INTERVAL = 10
SECONDS = int(os.environ.get("REXMON_SOAK_SECONDS", "600"))


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


def _load(url: str, stop: threading.Event, counts: dict[str, int]) -> None:
    """A bounded client loop on loopback: overview, metric list, one series, 20 requests/s at most."""
    session = requests.Session()
    paths = ["/", "/api/metrics", "/api/metrics/s0001/m0/series?period=hour"]
    while not stop.is_set() and counts["requests"] < SECONDS * 20:
        for p in paths:
            try:
                r = session.get(url + p, timeout=10)
                counts["ok" if r.status_code < 500 else "errors"] += 1
            except requests.RequestException:
                counts["errors"] += 1
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
    """1,000 slurpers for 10 minutes with web load: RSS and open files of `rexmon run` stay bounded, scheduling lag does not grow, the web never answers 5xx."""  # noqa: E501
    daemon = rrdcached()
    body = "".join(
        f'\n[[slurper]]\nid = "s{i:04d}"\ntype = "steady"\ninterval = {INTERVAL}\ntimeout = 5\n'
        for i in range(SLURPERS)
    )
    cfg = write_config(
        f'[archive]\nrrd_dir = "{tmp_path / "rrd"}"\nstep = 60\nrrdcached = "{daemon.address}"\n'
        f'[scheduler]\nstate_dir = "{tmp_path / "state"}"\njitter = 0\nworkers = 16\n' + body
    )
    collector = Collector(cfg, plugins, tmp_path / "rexmon.log")
    collectors.append(collector)
    collector.start()
    assert collector.proc is not None
    pid = collector.proc.pid
    rrd = tmp_path / "rrd"
    wait_for(lambda: len(list(rrd.glob("s*/*.rrd"))) >= SLURPERS, 180, "every slurper's files")
    url = web_server(cfg)
    stop, counts = threading.Event(), {"requests": 0, "ok": 0, "errors": 0}
    client = threading.Thread(target=_load, args=(url, stop, counts), daemon=True)
    client.start()
    samples: list[tuple[float, int, int]] = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < SECONDS:
            assert collector.proc.poll() is None, collector.output()[-2000:]
            samples.append((time.monotonic() - started, *_proc_stats(pid)))
            time.sleep(5)
    finally:
        stop.set()
        client.join(30)
    assert collector.stop() == 0
    third = len(samples) // 3
    middle, last = samples[third : 2 * third], samples[2 * third :]
    rss_mid, rss_last = max(s[1] for s in middle), max(s[1] for s in last)
    fd_mid, fd_last = max(s[2] for s in middle), max(s[2] for s in last)
    assert rss_last <= rss_mid * 1.2 + 20_000, samples
    assert fd_last <= fd_mid + 10, samples
    assert counts["errors"] == 0 and counts["ok"] > 0, counts
    archive = Archive(rrd, 60, daemon.address)
    try:
        end = int(time.time())
        lag = [v for v in archive.fetch("rexmon/scheduler.lag", end - SECONDS, end).values if v is not None]
    finally:
        archive.close()
    half = len(lag) // 2
    assert lag and sum(lag[half:]) / max(1, len(lag) - half) <= 2 * sum(lag[:half]) / max(1, half) + 1.0, lag

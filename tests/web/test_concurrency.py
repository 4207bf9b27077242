"""`rexmon web` under concurrent requests: a page of graphs loads its images in parallel.

librrd's graph code is not thread-safe; waitress serves each request in its own thread, so several
uncached images drawn at once crashed the whole web server (SIGSEGV). The server runs as a real
process here, so a crash fails the test instead of taking pytest down with it.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from downtime.db import upgrade
from rexmon.config import load
from tests.fixtures.rrdcached import free_port
from tests.web.conftest import SERIES, fill_archive

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read()


def test_many_uncached_graphs_at_once_are_all_drawn(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_config(f'[web]\ngraph_cache_dir = "{tmp_path / "graphs"}"\n')
    fill_archive(tmp_path / "rrd").close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rexmon = str(Path(sys.executable).parent / "rexmon")
    argv = [rexmon, "--config", str(path), "web", "--listen", f"127.0.0.1:{port}", "--threads", "8"]
    upgrade(load(path).database_url)
    log = (tmp_path / "web.log").open("wb")  # a file: a full pipe would stall the server, not crash it
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                _get(base + "/")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        # every URL a different image (width, period, format), so none comes from the cache
        urls = [
            f"{base}/img/{mid}.{fmt}?period={period}&width={300 + width}"
            for width in range(4)
            for mid in SERIES
            for period in ("day", "week")
            for fmt in ("png", "svg")
        ]
        urls += [f"{base}/img/condor.png?group=schedd.s1&width={400 + i}" for i in range(16)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(_get, urls * 2))
        assert proc.poll() is None, f"rexmon web died (exit {proc.returncode}): {_tail(tmp_path)}"
        for url, (status, ctype, body) in zip(urls * 2, answers, strict=True):
            assert status == 200, url
            if ".svg" in url:
                assert ctype.startswith("image/svg+xml") and b"<svg" in body[:400], url
            else:
                assert ctype == "image/png" and body.startswith(b"\x89PNG\r\n\x1a\n"), url
        assert _get(base + "/")[0] == 200
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _tail(tmp_path: Path) -> str:
    return (tmp_path / "web.log").read_text(errors="replace")[-2000:]

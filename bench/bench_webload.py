"""Web throughput: wrk on loopback against ``rexmon web`` and against plain servers, in the same run.

``rexmon web`` (waitress, 8 threads) serves an archive of 1,000 metrics; wrk measures requests/s and
latency for the overview page and for a cached graph image. Peers, same machine, same wrk settings:
- waitress (8 threads) serving a trivial WSGI app that returns the cached image's bytes: the server's
  own ceiling, without Flask or rexmon;
- Python's ``http.server`` (threading) serving the overview page saved as a static file.
Each endpoint is loaded for a few seconds, several times (median [min-max]).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import print_table, scratch, standalone, summary
from rrd.archive import Archive, SeriesSpec, Update
from tests.fixtures.rrdcached import free_port

SPEC = SeriesSpec("GAUGE", 120, 0, None)
THREADS = 8
IMAGE = "/img/load/load.png?period=day"
#: the peer: waitress serving fixed bytes through the smallest WSGI app
TRIVIAL_APP = """
import sys, waitress
body = open(sys.argv[2], "rb").read()
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "image/png"), ("Content-Length", str(len(body)))])
    return [body]
waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=int(sys.argv[3]), ident="peer")
"""


def fill(rrd_dir: Path, metrics: int, now: int) -> None:
    """A day of one-minute values for load/load, and two values each for ``metrics`` more."""
    archive = Archive(rrd_dir, 60)
    start = now - now % 60 - 86400
    archive.write(Update("load/load", start + i * 60, 1 + (i % 60) / 30, SPEC) for i in range(1, 1441))
    archive.write(
        Update(f"node{i // 50:03d}/metric.{i % 50:02d}", now - 120 + 60 * k, float(i), SPEC)
        for k in (0, 1)
        for i in range(metrics)
    )
    archive.close()


def config(tmp: Path, port: int) -> Path:
    etc = tmp / "etc"
    etc.mkdir(parents=True)
    path = etc / "rexmon.toml"
    path.write_text(
        f'[archive]\nrrd_dir = "{tmp / "rrd"}"\nstep = 60\n'
        f'[database]\nurl = "sqlite:///{tmp / "rexmon.db"}"\n'
        f'[web]\nlisten = "127.0.0.1:{port}"\ngraph_cache_dir = "{tmp / "graphs"}"\n',
        encoding="utf-8",
    )
    return path


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> bytes:
    """GET ``url`` until it answers 200 (the server is up); return the body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server {proc.args!r} exited {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                return bytes(resp.read())
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def wrk(url: str, seconds: float, connections: int) -> dict[str, float]:
    """One wrk run: requests/s, p50/p99 latency (ms), and non-2xx/socket errors."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s", url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise RuntimeError(f"cannot read wrk's output: {out[-1000:]}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + sum(int(x) for x in (sock.groups() if sock else ()))
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _latency(out, "50%"),
        "p99_ms": _latency(out, "99%"),
        "errors": float(errors),
    }


def _latency(out: str, label: str) -> float:
    m = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if m is None:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def start(argv: Sequence[str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start a server; its output goes to a file (http.server logs every request: a pipe would fill)."""
    with (cwd / f"server-{len(list(cwd.glob('server-*.log')))}.log").open("wb") as log:
        return subprocess.Popen(list(argv), cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(quick: bool = False, metrics: int = 1_000, seconds: float = 4, repeats: int = 3) -> dict[str, Any]:
    if quick:
        metrics, seconds, repeats = 200, 2, 1
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk not found: make setup installs it (Debian package wrk)")
    now = int(time.time())
    bin_dir = Path(sys.executable).parent
    with scratch("rexmon-bench-webload-") as tmp:
        fill(tmp / "rrd", metrics, now)
        ports = {k: free_port() for k in ("rexmon", "waitress", "static")}
        cfg = config(tmp, ports["rexmon"])
        subprocess.run([str(bin_dir / "rexmon"), "--config", str(cfg), "db", "upgrade"], check=True,
                       capture_output=True)  # fmt: skip
        procs = [
            start([str(bin_dir / "rexmon"), "--config", str(cfg), "web", "--threads", str(THREADS)], tmp)
        ]
        try:
            base = f"http://127.0.0.1:{ports['rexmon']}"
            page = wait_http(base + "/", procs[0])
            image = wait_http(base + IMAGE, procs[0])  # rendered once: later requests hit the cache
            (tmp / "static").mkdir()
            (tmp / "static" / "overview.html").write_bytes(page)
            (tmp / "image.png").write_bytes(image)
            procs.append(start([sys.executable, "-c", TRIVIAL_APP, str(ports["waitress"]),
                                str(tmp / "image.png"), str(THREADS)], tmp))  # fmt: skip
            procs.append(start([sys.executable, "-m", "http.server", str(ports["static"]), "--bind",
                                "127.0.0.1", "--directory", str(tmp / "static")], tmp))  # fmt: skip
            targets = {
                "rexmon_overview": base + "/",
                "rexmon_cached_image": base + IMAGE,
                "peer_waitress_trivial": f"http://127.0.0.1:{ports['waitress']}/",
                "peer_static_http_server": f"http://127.0.0.1:{ports['static']}/overview.html",
            }
            wait_http(targets["peer_waitress_trivial"], procs[1])
            wait_http(targets["peer_static_http_server"], procs[2])
            runs: dict[str, list[dict[str, float]]] = {k: [] for k in targets}
            for _ in range(repeats):  # interleaved, so a noisy moment hits every endpoint alike
                for name, url in targets.items():
                    runs[name].append(wrk(url, seconds, THREADS))
        finally:
            for p in procs:
                stop(p)
    out: dict[str, Any] = {"metrics": metrics, "seconds_per_run": seconds, "connections": THREADS}
    for name, rs in runs.items():
        out[name] = {
            "requests_per_s": summary([r["rps"] for r in rs]),
            "p50_ms": summary([r["p50_ms"] for r in rs]),
            "p99_ms": summary([r["p99_ms"] for r in rs]),
            "errors": sum(r["errors"] for r in rs),
        }
    rps = {k: out[k]["requests_per_s"]["median"] for k in targets}
    out["ratio_waitress_trivial_over_rexmon_image"] = (
        rps["peer_waitress_trivial"] / rps["rexmon_cached_image"]
    )
    out["ratio_static_over_rexmon_overview"] = rps["peer_static_http_server"] / rps["rexmon_overview"]
    _print(out, metrics, seconds, repeats, len(page))
    return out


def _print(out: dict[str, Any], metrics: int, seconds: float, repeats: int, page_bytes: int) -> None:
    def row(name: str, label: str) -> tuple[str, Any, str]:
        r = out[name]
        q, p50, p99 = r["requests_per_s"], r["p50_ms"]["median"], r["p99_ms"]["median"]
        note = f"req/s [{q['min']:,.0f}-{q['max']:,.0f}], p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        note += f", errors {r['errors']:.0f}"
        return (label, q["median"], note)

    print_table(
        f"web under wrk ({THREADS} connections, {seconds:g} s x {repeats}; {metrics:,} metrics, "
        f"overview {page_bytes / 1024:.0f} KiB)",
        [
            row("rexmon_overview", "rexmon web: overview /"),
            row("peer_static_http_server", "http.server: overview as a static file (peer)"),
            row("rexmon_cached_image", "rexmon web: cached graph PNG"),
            row("peer_waitress_trivial", "waitress: trivial WSGI app, same bytes (peer)"),
            ("static file / rexmon overview", out["ratio_static_over_rexmon_overview"], "x"),
            ("trivial WSGI / rexmon cached image", out["ratio_waitress_trivial_over_rexmon_image"], "x"),
        ],
    )  # fmt: skip


def main() -> None:
    standalone(run, __doc__)


if __name__ == "__main__":
    main()

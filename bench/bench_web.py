"""Web benchmark: graph render latency (uncached, cached, through Flask) against a plain
``rrdtool graph`` subprocess measured in the same run, and the overview with 10,000 metrics.

Run: ``.venv/bin/python -m bench.bench_web [--quick] [--json out.json]``.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import percentile, print_table, scratch, standalone
from downtime.db import upgrade
from rexmon.config import load
from rrd.archive import Archive, SeriesSpec, Update
from rrd.graph import GraphRenderer, GraphSpec, build_args

log = logging.getLogger(__name__)
NOW = 1_763_730_000 - 1_763_730_000 % 3600
SPEC = SeriesSpec("GAUGE", 120, None, None)


def _times(fn: Callable[[], object], n: int) -> dict[str, float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": percentile(out, 50), "p95_ms": percentile(out, 95), "n": n}


def _fill_day(rrd_dir: Path) -> Archive:
    archive = Archive(rrd_dir, 60)
    start = NOW - 2 * 86400
    archive.write(Update("load/load", start + i * 60, 1 + (i % 60) / 30, SPEC) for i in range(1, 2881))
    return archive


def _fill_many(rrd_dir: Path, count: int) -> Archive:
    # an hourly step keeps 10,000 files small; the overview cost is per file, not per row
    archive = Archive(rrd_dir, 3600)
    ups = [
        Update(f"s{i % 100:03d}/metric.{i:05d}", NOW - 3600 * k, float(i), SPEC)
        for i in range(count)
        for k in (1, 0)
    ]
    archive.write(ups)
    return archive


def bench_graphs(tmp: Path, n: int) -> dict[str, Any]:
    archive = _fill_day(tmp / "rrd")
    spec = GraphSpec(("load/load",), NOW - 86400, NOW, 700, 220)
    plain = GraphRenderer(archive)
    cached = GraphRenderer(archive, tmp / "cache")
    cached.render(spec)
    argv = ["rrdtool", "graph", str(tmp / "peer.png"), *build_args(spec, [archive.path("load/load")])]
    out = {
        "uncached": _times(lambda: plain.render(spec, use_cache=False), n),
        "cached": _times(lambda: cached.render(spec), n),
        "peer_rrdtool_subprocess": _times(lambda: subprocess.run(argv, check=True, capture_output=True), n),
    }
    out["uncached_vs_peer"] = out["uncached"]["p50_ms"] / out["peer_rrdtool_subprocess"]["p50_ms"]
    archive.close()
    return out


def _app(tmp: Path, rrd_dir: Path, step: int) -> Any:
    from web import create_app

    (tmp / "etc").mkdir(parents=True, exist_ok=True)
    path = tmp / "etc" / "rexmon.toml"
    path.write_text(
        f'[archive]\nrrd_dir = "{rrd_dir}"\nstep = {step}\n[database]\nurl = "sqlite:///{tmp}/rexmon.db"\n'
        f'[web]\ngraph_cache_dir = "{tmp}/graphs"\n',
        encoding="utf-8",
    )
    config = load(path)
    upgrade(config.database_url)  # as `rexmon web` finds it: the alarm and downtime tables exist
    return create_app(config, clock=lambda: float(NOW))


def bench_web(tmp: Path, n: int, metrics: int) -> dict[str, Any]:
    _fill_day(tmp / "day")
    client = _app(tmp / "a", tmp / "day", 60).test_client()
    client.get("/img/load/load.png?period=day")
    out: dict[str, Any] = {
        "image_cached_http": _times(lambda: client.get("/img/load/load.png?period=day"), n)
    }
    _fill_many(tmp / "many", metrics).close()
    big = _app(tmp / "b", tmp / "many", 3600).test_client()
    big.get("/")
    out["overview"] = {"metrics": metrics, **_times(lambda: big.get("/"), max(3, n // 10))}
    out["api_metrics"] = {"metrics": metrics, **_times(lambda: big.get("/api/metrics"), max(3, n // 10))}
    return out


def run(quick: bool = False) -> dict[str, Any]:
    """Measure and print; returns the figures (milliseconds)."""
    n, metrics = (20, 1_000) if quick else (100, 10_000)
    with scratch("rexmon-bench-web-") as tmp:
        graphs = bench_graphs(tmp / "g", n)
        web = bench_web(tmp / "w", n, metrics)
    rows = [
        ("graph uncached p50 (ms)", graphs["uncached"]["p50_ms"], f"p95 {graphs['uncached']['p95_ms']:.1f}"),
        ("graph cached p50 (ms)", graphs["cached"]["p50_ms"], f"p95 {graphs['cached']['p95_ms']:.2f}"),
        (
            "rrdtool graph subprocess p50 (ms)",
            graphs["peer_rrdtool_subprocess"]["p50_ms"],
            f"p95 {graphs['peer_rrdtool_subprocess']['p95_ms']:.1f} (peer)",
        ),
        ("uncached / peer", graphs["uncached_vs_peer"], "< 1: in-process rrdtool beats a fork"),
        ("GET image cached p50 (ms)", web["image_cached_http"]["p50_ms"], "through Flask"),
        (
            f"GET / with {metrics} metrics p50 (ms)",
            web["overview"]["p50_ms"],
            f"p95 {web['overview']['p95_ms']:.0f}",
        ),
        (f"GET /api/metrics ({metrics}) p50 (ms)", web["api_metrics"]["p50_ms"], ""),
    ]
    print_table("web: graphs and overview", rows)
    return {"graphs": graphs, "web": web}


def main() -> None:
    standalone(run, __doc__)


if __name__ == "__main__":
    main()

"""Web benchmark: graph render latency (uncached, cached, through Flask) against a plain
``rrdtool graph`` subprocess measured in the same run, and the overview at 10,000 and 100,000 metrics.

The overview figures (``bench_overview``): bytes on the wire (gzip, as a browser asks) and the server
time of ``GET /`` cold (a fresh app: no listing, catalogue or state cached) and warm (p50/p95), and of
the refresh (``/overview/changes?since=``) when nothing changed and when one metric changed state. The
peer, measured in the same run: Python's ``http.server`` serving the same page as a static file (what
no server-side work at all costs over loopback).

Run: ``.venv/bin/python -m bench.bench_web [--quick] [--json out.json]``.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import percentile, print_table, scratch, standalone, summary
from downtime.db import upgrade
from rexmon.config import load
from rrd.archive import Archive, SeriesSpec, Update
from rrd.graph import GraphRenderer
from rrd.graphargs import GraphSpec, build_args

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
    out: dict[str, Any] = {
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


def _fill_overview(tmp: Path, count: int) -> tuple[Path, Any]:
    """``count`` metrics in 100 slurpers, groups of 10; 10 % judged, 0.5 % of them problems.

    One real RRD file is created and hard-linked under every name: the overview's cost is per name
    (listing, states, catalogue), and it reads files only for what it shows with values.
    """
    from alarms.catalogue import CatalogueWriter
    from alarms.engine import MetricRecord
    from alarms.observation import Observation
    from alarms.store import AlarmStore
    from downtime.db import make_engine

    rrd_dir = tmp / "rrd"
    seed = Archive(tmp / "seed", 3600)
    seed.write([Update("s/m", NOW - 3600, 1.0, SPEC), Update("s/m", NOW, 7.3e7, SPEC)])
    seed.close()
    ids = [f"s{i % 100:03d}/g{(i // 100) // 10:04d}.m{i:06d}" for i in range(count)]
    for slurper in {m.split("/")[0] for m in ids}:
        (rrd_dir / slurper).mkdir(parents=True, exist_ok=True)
    seed_file = tmp / "seed" / "s" / "m.rrd"
    for k, mid in enumerate(ids):
        if k % 10_000 == 0:  # a file takes at most 65,000 links (ext4): a fresh copy every 10,000
            source = seed_file.with_name(f"m{k}.rrd")
            shutil.copyfile(seed_file, source)
        os.link(source, rrd_dir / f"{mid}.rrd")
    app = _app(tmp, rrd_dir, 3600)
    engine = make_engine(app.extensions["rexmon"]["config"].database_url)
    states = ["CRITICAL" if i % 200 == 0 else "OK" for i in range(0, count, 10)]
    AlarmStore(engine).commit(
        [MetricRecord(ids[i * 10], st, NOW - 600, 7.3e7, NOW, rule="bench") for i, st in enumerate(states)],  # type: ignore[arg-type]
        now=NOW,
    )
    writer = CatalogueWriter(engine)
    shapes = [Observation(m, NOW, 1.0, unit="B", base=1024, graph=m.split("/")[1].split(".")[0]) for m in ids]
    with engine.begin() as conn:
        writer.note(conn, shapes, NOW)
    engine.dispose()
    return rrd_dir, app


def _serve_static(tmp: Path, page: bytes) -> tuple[subprocess.Popen[bytes], str]:
    from tests.fixtures.rrdcached import free_port

    (tmp / "static").mkdir(exist_ok=True)
    (tmp / "static" / "overview.html").write_bytes(page)
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "http.server",
        str(port),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(tmp / "static"),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/overview.html"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return proc, url
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.1)


def bench_overview(tmp: Path, count: int, n: int) -> dict[str, Any]:
    """The overview of ``count`` metrics: bytes, cold and warm server time, the refresh, the peer."""
    from web import create_app

    gz = {"Accept-Encoding": "gzip"}
    _, app = _fill_overview(tmp, count)
    config = app.extensions["rexmon"]["config"]
    cold: list[float] = []
    for _ in range(3):  # each a fresh app: nothing listed, read or cached yet
        client = create_app(config, clock=lambda: float(NOW)).test_client()
        t = time.perf_counter()
        client.get("/", headers=gz)
        cold.append((time.perf_counter() - t) * 1000)
    client = create_app(config, clock=lambda: float(NOW)).test_client()
    first = client.get("/", headers=gz)
    plain = client.get("/")
    warm = _times(lambda: client.get("/", headers=gz), n)
    version = client.get("/overview/changes").get_json()["version"]
    same = client.get("/overview/changes", query_string={"since": version}, headers=gz)
    refresh = _times(lambda: client.get("/overview/changes", query_string={"since": version}, headers=gz), n)
    # a sparkline (fetched by the browser when its row is seen) and, beside it, the group's small PNG
    # thumbnail from the graph cache (what an open group shows)
    group = {"group": "g0000"}
    spark = client.get("/overview/spark/s001.svg", query_string=group, headers=gz)
    assert spark.status_code == 200, spark.status_code
    spark_t = _times(lambda: client.get("/overview/spark/s001.svg", query_string=group, headers=gz), n)
    thumb_q = {**group, "size": "small", "period": "day"}
    thumb = client.get("/img/s001.png", query_string=thumb_q)
    thumb_t = _times(lambda: client.get("/img/s001.png", query_string=thumb_q), n)
    from alarms.engine import MetricRecord
    from alarms.store import AlarmStore
    from downtime.db import make_engine

    engine = make_engine(config.database_url)
    AlarmStore(engine).commit(
        [MetricRecord("s001/g0000.m000001", "WARNING", NOW, 1.0, NOW, rule="b")], now=NOW
    )
    engine.dispose()
    one = client.get("/overview/changes", query_string={"since": version}, headers=gz)
    proc, url = _serve_static(tmp, plain.get_data())
    try:
        peer = _times(lambda: urllib.request.urlopen(url, timeout=10).read(), n)
    finally:
        proc.terminate()
        proc.wait(10)
    return {
        "metrics": count,
        "bytes_wire": len(first.get_data()),
        "bytes_uncompressed": len(plain.get_data()),
        "cold_ms": summary(cold),
        "warm": warm,
        "refresh_unchanged_bytes": len(same.get_data()),
        "refresh_unchanged": refresh,
        "refresh_one_change_bytes": len(one.get_data()),
        "refresh_one_change_parts": len(json.loads(gzip.decompress(one.get_data()))["parts"]),
        "peer_static_http_server": peer,
        "warm_vs_peer": warm["p50_ms"] / peer["p50_ms"],
        "sparklines_on_page": plain.get_data().count(b'class="spark"'),
        "spark_bytes_wire": len(spark.get_data()),
        "spark": spark_t,
        "thumb_png_bytes": len(thumb.get_data()),
        "thumb_png_cached": thumb_t,
    }


def _overview_rows(o: dict[str, Any]) -> list[tuple[str, Any, str]]:
    c, cold, warm = f"{o['metrics']:,}", o["cold_ms"], o["warm"]
    unchanged, peer = o["refresh_unchanged"], o["peer_static_http_server"]
    return [
        (f"overview {c}: bytes on the wire (gzip)", o["bytes_wire"], f"{o['bytes_uncompressed']:,} unpacked"),
        (f"overview {c}: cold (ms)", cold["median"], f"[{cold['min']:.0f}-{cold['max']:.0f}]"),
        (f"overview {c}: warm p50 (ms)", warm["p50_ms"], f"p95 {warm['p95_ms']:.0f}"),
        (
            f"overview {c}: refresh, nothing changed (bytes)",
            o["refresh_unchanged_bytes"],
            f"p50 {unchanged['p50_ms']:.0f} ms, p95 {unchanged['p95_ms']:.0f} ms",
        ),
        (
            f"overview {c}: refresh, one state changed (bytes)",
            o["refresh_one_change_bytes"],
            f"{o['refresh_one_change_parts']} parts",
        ),
        (
            f"overview {c}: static page, http.server p50 (ms)",
            peer["p50_ms"],
            f"p95 {peer['p95_ms']:.1f} (peer)",
        ),
        (f"overview {c}: warm / peer", o["warm_vs_peer"], "x"),
        (
            f"overview {c}: one sparkline p50 (ms)",
            o["spark"]["p50_ms"],
            f"p95 {o['spark']['p95_ms']:.1f}; {o['spark_bytes_wire']} B gzip; "
            f"{o['sparklines_on_page']} on the page, each fetched when seen",
        ),
        (
            f"overview {c}: group thumbnail PNG, cached p50 (ms)",
            o["thumb_png_cached"]["p50_ms"],
            f"{o['thumb_png_bytes']:,} B (what an open group shows)",
        ),
    ]


def run(quick: bool = False) -> dict[str, Any]:
    """Measure and print; returns the figures (milliseconds)."""
    n, metrics = (20, 1_000) if quick else (100, 10_000)
    with scratch("rexmon-bench-web-") as tmp:
        graphs = bench_graphs(tmp / "g", n)
        web = bench_web(tmp / "w", n, metrics)
        sizes = (1_000, 10_000) if quick else (10_000, 100_000)
        overviews = [bench_overview(tmp / f"o{c}", c, max(5, n // 5)) for c in sizes]
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
    for o in overviews:
        rows += _overview_rows(o)
    print_table("web: graphs and overview", rows)
    return {"graphs": graphs, "web": web, "overview": overviews}


def main() -> None:
    standalone(run, __doc__)


if __name__ == "__main__":
    main()

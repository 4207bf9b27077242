"""Graph drawing benchmark: rexmon's drawing processes (each graph in the zone it states) against the
peer measured in the same run, a plain ``rrdtool graph`` subprocess with ``TZ`` in its environment (the
other safe way to draw in a zone), and in-process librrd (the earlier way: one graph at a time, in the
server's own zone only; shown for reference).

Every figure is the median (min-max) of repeated uncached day graphs of one metric, 700 x 220 px.

Run: ``.venv/bin/python -m bench.bench_graph [--quick] [--json out.json]``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import rrdtool

from bench.common import print_table, scratch, standalone, summary
from rrd.archive import Archive, SeriesSpec, Update
from rrd.graph import DRAWER, GraphRenderer
from rrd.graphargs import GraphSpec, build_args

NOW = 1_763_730_000 - 1_763_730_000 % 3600
SPEC = SeriesSpec("GAUGE", 120, None, None)
ZONES = ("UTC", "America/Chicago", "Europe/Zurich", "Asia/Tokyo")


def _ms(fn: Callable[[], object], n: int) -> dict[str, float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return summary(out)


def _wall_ms(fn: Callable[[int], object], n: int, threads: int) -> float:
    """Wall time per graph of ``n`` graphs asked by ``threads`` threads at once (a page of images)."""
    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(fn, range(n)))
    return (time.perf_counter() - t) * 1000 / n


def run(quick: bool = False) -> dict[str, Any]:
    n = 15 if quick else 60
    with scratch("rexmon-bench-graph-") as tmp:
        archive = Archive(tmp / "rrd", 60)
        start = NOW - 2 * 86400
        archive.write(Update("load/load", start + i * 60, 1 + (i % 60) / 30, SPEC) for i in range(1, 2881))
        renderer = GraphRenderer(archive)

        def spec(i: int) -> GraphSpec:
            return GraphSpec(("load/load",), NOW - 86400, NOW, 700, 220, zone=ZONES[i % len(ZONES)])

        args = build_args(spec(0), [archive.path("load/load")])
        renderer.render(spec(0), use_cache=False)  # start the drawing processes
        counter = iter(range(10**9))
        peer_png = str(Path(tmp) / "peer.png")

        def peer(i: int) -> None:
            env = {**os.environ, "TZ": ZONES[i % len(ZONES)]}
            subprocess.run(["rrdtool", "graph", peer_png, *args], check=True, capture_output=True, env=env)

        out: dict[str, Any] = {
            "rexmon_drawer": _ms(lambda: renderer.render(spec(next(counter)), use_cache=False), n),
            "peer_rrdtool_subprocess": _ms(lambda: peer(next(counter)), n),
            "in_process_librrd": _ms(lambda: rrdtool.graphv("-", *args), n),
            "rexmon_drawer_4_at_once_ms_per_graph": _wall_ms(
                lambda i: renderer.render(spec(i), use_cache=False), n, 4
            ),
            "peer_subprocess_4_at_once_ms_per_graph": _wall_ms(peer, n, 4),
        }
        out["drawer_vs_peer"] = out["rexmon_drawer"]["median"] / out["peer_rrdtool_subprocess"]["median"]
        DRAWER.close()
        archive.close()

    def row(key: str, note: str) -> tuple[str, Any, str]:
        s = out[key]
        return (f"{key} median (ms)", s["median"], f"min {s['min']:.1f} max {s['max']:.1f} {note}")

    print_table(
        "graphs: uncached day graph, 700 x 220, zones rotating",
        [
            row("rexmon_drawer", "(child processes, TZ per graph)"),
            row("peer_rrdtool_subprocess", "(peer: rrdtool graph, TZ in env)"),
            row("in_process_librrd", "(reference: server's zone only)"),
            ("rexmon, 4 at once (ms/graph)", out["rexmon_drawer_4_at_once_ms_per_graph"], ""),
            ("peer, 4 at once (ms/graph)", out["peer_subprocess_4_at_once_ms_per_graph"], "(peer)"),
            ("drawer / peer", out["drawer_vs_peer"], "< 1: the drawing processes beat a fork per graph"),
        ],
    )
    return out


if __name__ == "__main__":
    standalone(run, __doc__)

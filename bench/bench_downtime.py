"""Downtime coverage: which of 1,000 downtimes cover each of 100,000 metric ids at one instant.

rexmon's DowntimeIndex (patterns grouped by literal prefix, cached per metric) against the naive peer
measured in the same run: for every metric, fnmatch every pattern of every window (on a sample, scaled).
"""

from __future__ import annotations

import fnmatch
import random
import time
from typing import Any

from bench.common import print_table, standalone, summary
from downtime.index import DowntimeIndex
from downtime.windows import Window

SLURPERS = [
    f"{kind}-{i:02d}" for kind in ("condor", "slurm", "fts", "tape", "netbeam", "host") for i in range(40)
]


def workload(n_metrics: int, n_downtimes: int, seed: int = 1) -> tuple[list[str], list[Window], float]:
    rnd = random.Random(seed)
    per = max(1, n_metrics // len(SLURPERS))
    metrics = [f"{s}/metric.{j:04d}.{rnd.choice(('a', 'b', 'c'))}" for s in SLURPERS for j in range(per)]
    shapes = [
        lambda s: f"{s}/*",
        lambda s: f"{s}/metric.0{rnd.randrange(10)}*",
        lambda s: f"*/metric.{rnd.randrange(1000):04d}.*",
        lambda s: f"{s.split('-')[0]}-*/metric.*.{rnd.choice('abc')}",
        lambda s: f"{s}/metric.{rnd.randrange(per):04d}.a",
    ]
    now = 1_780_000_000.0
    windows = []
    for i in range(n_downtimes):
        scope = tuple(rnd.choice(shapes)(rnd.choice(SLURPERS)) for _ in range(rnd.randint(1, 3)))
        start = now + rnd.uniform(-86400, 86400)
        windows.append(Window(i + 1, start, start + rnd.uniform(600, 86400), scope))
    return metrics, windows, now


def _rexmon(metrics: list[str], windows: list[Window], now: float) -> tuple[float, int]:
    t0 = time.perf_counter()
    idx = DowntimeIndex(windows)
    covered = sum(1 for m in metrics if idx.covering(m, now))
    return time.perf_counter() - t0, covered


def _naive(metrics: list[str], windows: list[Window], now: float) -> tuple[float, int]:
    t0 = time.perf_counter()
    covered = 0
    for m in metrics:
        if any(w.start <= now < w.end and any(fnmatch.fnmatchcase(m, p) for p in w.scope) for w in windows):
            covered += 1
    return time.perf_counter() - t0, covered


def run(
    quick: bool = False, n_metrics: int = 100_000, n_downtimes: int = 1_000, rounds: int = 5
) -> dict[str, Any]:
    if quick:
        rounds = 3
    metrics, windows, now = workload(n_metrics, n_downtimes)
    times, covered = [], 0
    for _ in range(rounds):
        elapsed, covered = _rexmon(metrics, windows, now)
        times.append(elapsed)
    sample = metrics[:: max(1, len(metrics) // 2000)]
    peer_times = []
    for _ in range(3):
        elapsed, peer_cov = _naive(sample, windows, now)
        peer_times.append(elapsed * len(metrics) / len(sample))
    idx = DowntimeIndex(windows)
    agree = sum(1 for m in sample if idx.covering(m, now)) == peer_cov
    rx, peer = summary(times), summary(peer_times)
    out = {
        "metrics": len(metrics), "downtimes": n_downtimes, "covered_metrics": covered,
        "rexmon_s": rx, "naive_fnmatch_s_scaled": peer, "speedup": peer["median"] / rx["median"],
        "agrees_with_naive_on_sample": agree,
    }  # fmt: skip
    print_table(
        f"downtime coverage, {n_downtimes:,} downtimes x {len(metrics):,} metrics (median [min-max])",
        [
            ("rexmon DowntimeIndex (build + query all)", rx["median"],
             f"s [{rx['min']:.3f}-{rx['max']:.3f}] (target < 1)"),
            ("naive fnmatch scan (peer, scaled from sample)", peer["median"], "s"),
            ("speed-up", out["speedup"], "x"),
            ("metrics covered now", covered, f"(same answer as the peer on the sample: {agree})"),
        ],
    )  # fmt: skip
    return out


def main() -> None:
    standalone(run, __doc__)


if __name__ == "__main__":
    main()

"""Scheduling: 10,000 slurpers at a 60 s interval through the whole service (scheduler, writer, rrdcached).

Each child process runs one workload and reports lag percentiles, CPU and peak RSS:
- rexmon: the real Service with 10,000 in-process slurpers, archiving through rrdcached;
- peer: bare APScheduler 3 with 10,000 no-op interval jobs in the same thread pool size, measuring
  its own start lag (what the scheduler alone costs).
Lag = time a run starts minus its scheduled time. The first round (creating 30,000 RRD files) is
reported separately from the steady state.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import cpu_seconds, percentile, print_table, rss_peak_mb, scratch

INTERVAL = 60


def _child_rexmon(n: int, duration: float, tmp: Path) -> dict[str, Any]:
    from rexmon.config import load
    from rexmon.service import Service
    from slurpers.api import CollectContext, MetricSpec, Reading, Slurper, settings
    from tests.fixtures.rrdcached import start_rrdcached

    @settings
    class TinySettings:
        """No settings: the bench builds its slurpers directly."""

    class Tiny(Slurper[TinySettings]):
        def metrics(self) -> Sequence[MetricSpec]:
            return [MetricSpec("value")]

        def collect(self, ctx: CollectContext) -> Sequence[Reading]:
            return [Reading("value", float(int(ctx.now) % 97))]

    daemon = start_rrdcached(tmp / "rrd", tmp / "daemon", tcp=False)
    etc = tmp / "etc"
    etc.mkdir()
    (etc / "rexmon.toml").write_text(
        f'[archive]\nrrd_dir = "{tmp / "rrd"}"\nrrdcached = "{daemon.address}"\n'
        f'[scheduler]\nworkers = 16\njitter = 0\nstate_dir = "{tmp / "state"}"\n'
    )
    cfg = load(etc / "rexmon.toml")
    slurpers = [Tiny(f"s{i:05d}", TinySettings(), interval=INTERVAL, timeout=10) for i in range(n)]
    service = Service(cfg, slurpers=slurpers)
    cpu0, t0 = cpu_seconds(), time.monotonic()
    service.start()
    try:
        time.sleep(INTERVAL)
        first_round = list(service.lags)
        cpu1 = cpu_seconds()
        service.lags.clear()
        time.sleep(duration - INTERVAL)
        steady = list(service.lags)
        cpu2 = cpu_seconds()
    finally:
        service.stop()
        daemon.stop()
    return {
        "runs_first_round": len(first_round),
        "runs_steady": len(steady),
        "lag_p50_s": percentile(steady, 50),
        "lag_p99_s": percentile(steady, 99),
        "lag_max_s": max(steady) if steady else float("nan"),
        "first_round_lag_p99_s": percentile(first_round, 99),
        "cpu_s_per_minute_steady": (cpu2 - cpu1) / (duration - INTERVAL) * 60,
        "cpu_s_first_round": cpu1 - cpu0,
        "rss_peak_mb": rss_peak_mb(),
        "archive_written": service.totals.written,
        "archive_errors": len(service.totals.errors),
        "wall_s": time.monotonic() - t0,
    }


def _child_peer(n: int, duration: float) -> dict[str, Any]:
    from datetime import UTC, datetime

    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    lags: list[float] = []
    sched = BackgroundScheduler(executors={"default": ThreadPoolExecutor(16)}, timezone="UTC")
    now = time.time()

    def job(scheduled: list[float]) -> None:
        t = time.time()
        lags.append(t - scheduled[0])
        scheduled[0] += INTERVAL

    for i in range(n):
        first = now + (i / n) * INTERVAL
        sched.add_job(
            job,
            "interval",
            seconds=INTERVAL,
            args=([first],),
            id=str(i),
            next_run_time=datetime.fromtimestamp(first, UTC),
            coalesce=True,
            max_instances=1,
        )
    cpu0 = cpu_seconds()
    sched.start()
    time.sleep(duration)
    sched.shutdown(wait=False)
    steady = lags[n // 2 :]
    return {
        "runs": len(lags),
        "lag_p50_s": percentile(steady, 50),
        "lag_p99_s": percentile(steady, 99),
        "cpu_s_per_minute": (cpu_seconds() - cpu0) / duration * 60,
        "rss_peak_mb": rss_peak_mb(),
    }


def _spawn(kind: str, n: int, duration: float) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "bench.bench_scheduler",
        "--child",
        kind,
        "-n",
        str(n),
        "--duration",
        str(duration),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=duration + 600)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(quick: bool = False, n: int = 10_000, duration: float = 150) -> dict[str, Any]:
    if quick:
        n, duration = 2_000, 130
    rex = _spawn("rexmon", n, duration)
    peer = _spawn("peer", n, duration - INTERVAL)
    out = {"slurpers": n, "interval_s": INTERVAL, "rexmon": rex, "apscheduler_noop_peer": peer}
    print_table(
        f"scheduling, {n:,} slurpers at {INTERVAL} s (steady state after the first round)",
        [
            ("rexmon lag p50", rex["lag_p50_s"], "s"),
            ("rexmon lag p99", rex["lag_p99_s"], "s (target < 1)"),
            ("bare APScheduler no-op lag p99 (peer)", peer["lag_p99_s"], "s"),
            ("rexmon CPU per minute", rex["cpu_s_per_minute_steady"], "CPU-s/min (2 cores = 120)"),
            ("peer CPU per minute", peer["cpu_s_per_minute"], "CPU-s/min"),
            ("rexmon / peer CPU", rex["cpu_s_per_minute_steady"] / max(peer["cpu_s_per_minute"], 1e-9), "x"),
            ("rexmon peak RSS", rex["rss_peak_mb"], "MB (target < 500)"),
            ("peer peak RSS", peer["rss_peak_mb"], "MB"),
            ("first round lag p99 (creates the RRD files)", rex["first_round_lag_p99_s"], "s"),
            ("values archived / archive errors", f"{rex['archive_written']:,} / {rex['archive_errors']}", ""),
        ],
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", choices=["rexmon", "peer"])
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--duration", type=float, default=150)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.child == "peer":
        print(json.dumps(_child_peer(args.n, args.duration)))
        return
    if args.child == "rexmon":
        with scratch("rexmon-bench-sched-") as tmp:
            print(json.dumps(_child_rexmon(args.n, args.duration, tmp)))
        return
    out = run(quick=args.quick, n=args.n, duration=args.duration)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

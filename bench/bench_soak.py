"""Soak: a million slurper runs through the real service (scheduler, writer, rrdcached); does memory grow?

One child process runs the real ``Service`` with 2,000 in-process slurpers at a 1 s interval (APScheduler,
the writer thread, a real rrdcached on a unix socket) until at least one million runs are done. Every
``--sample`` seconds it records the runs so far, its RSS, open files and threads. After a warm-up (the
first fifth of the runs: files created, caches filled) the RSS samples are fitted by least squares against
the run count: the slope in MB per million runs, extrapolated to a site's 10,000 slurpers at 60 s for 30
days (432 million runs; target under 20 MB). Opt-in (``python -m bench --only soak`` or ``make soak``):
it takes about ten minutes.

``python -m bench.bench_soak --label after --json var/soak-after.json`` measures; ``--report BEFORE AFTER``
prints the BENCHMARKS.md section comparing two measurements (e.g. the commit before the fix, run from a
``git worktree``, and the fix).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import print_table, scratch

SLURPERS = 2000
INTERVAL = 1
RUNS = 1_000_000
#: a site: 10,000 slurpers every 60 s for 30 days
SITE_RUNS = 10_000 * (86400 // 60) * 30
TARGET_MB = 20.0


def _proc(pid: int | str = "self") -> dict[str, int]:
    """RSS (KiB), threads and open files of a process, from /proc."""
    out = {"rss_kb": 0, "threads": 0}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            out["rss_kb"] = int(line.split()[1])
        elif line.startswith("Threads:"):
            out["threads"] = int(line.split()[1])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 when x does not vary)."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return 0.0 if sxx == 0 else sum((x - mx) * (y - my) for x, y in points) / sxx


def slope_interval(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The slope's 95 % confidence interval (normal approximation: slope +- 1.96 standard errors), so that
    a slope within the samples' scatter is not read as growth or as its absence."""
    b = slope(points)
    n = len(points)
    xs = [p[0] for p in points]
    mx = statistics.fmean(xs)
    sxx = sum((x - mx) ** 2 for x in xs)
    if n < 3 or sxx == 0:
        return (float("nan"), float("nan"))
    a = statistics.fmean(p[1] for p in points) - b * mx
    se = math.sqrt(sum((y - a - b * x) ** 2 for x, y in points) / (n - 2) / sxx)
    return (b - 1.96 * se, b + 1.96 * se)


def verdict(low_mb: float, high_mb: float) -> str:
    """What the 30-day interval says about the target."""
    if high_mb < TARGET_MB:
        return "met"
    if low_mb >= TARGET_MB:
        return "not met"
    return "not resolved: the interval spans the target (more runs narrow it)"


def measure(slurpers: int, interval: float, runs: int, sample: float, max_seconds: float) -> dict[str, Any]:
    """Run the service until ``runs`` runs (or ``max_seconds``); samples and the fitted growth."""
    from rexmon.config import load
    from rexmon.memory import cap_arenas
    from rexmon.service import Service
    from slurpers.api import CollectContext, MetricSpec, Reading, Slurper
    from tests.fixtures.rrdcached import start_rrdcached

    cap_arenas()  # as `rexmon run` does before its threads start (the trim is the service's own)
    counter = itertools.count(1)
    done = [0]

    class Tick(Slurper):
        type_name = "bench"
        Settings = dict

        def metrics(self) -> Sequence[MetricSpec]:
            return [MetricSpec("value")]

        def collect(self, ctx: CollectContext) -> Sequence[Reading]:
            done[0] = next(counter)  # itertools.count: atomic under the GIL
            return [Reading("value", float(int(ctx.now) % 97))]

    with scratch("rexmon-soak-") as tmp:
        daemon = start_rrdcached(tmp / "rrd", tmp / "daemon", tcp=False)
        etc = tmp / "etc"
        etc.mkdir()
        (etc / "rexmon.toml").write_text(
            f'[archive]\nrrd_dir = "{tmp / "rrd"}"\nrrdcached = "{daemon.address}"\n'
            f'[scheduler]\nworkers = 16\njitter = 0\nstate_dir = "{tmp / "state"}"\n',
            encoding="utf-8",
        )
        cfg = load(etc / "rexmon.toml")
        service = Service(
            cfg, slurpers=[Tick(f"s{i:05d}", {}, interval=interval, timeout=10) for i in range(slurpers)]
        )
        samples: list[dict[str, float]] = []
        t0 = time.monotonic()
        service.start()
        try:
            while True:
                time.sleep(sample)
                elapsed = time.monotonic() - t0
                row: dict[str, float] = {"t_s": round(elapsed, 1), "runs": done[0], **_proc()}
                # Python's own heap, apart from the allocator's arenas and C libraries: objects alive
                row["blocks"] = sys.getallocatedblocks()
                row["rrdcached_rss_kb"] = _proc(daemon.proc.pid)["rss_kb"]
                samples.append(row)
                print(
                    f"  {elapsed:7.0f} s  {done[0]:>10,} runs  RSS {row['rss_kb'] / 1024:7.1f} MB  "
                    f"fds {row['fds']:>4}  threads {row['threads']:>3}",
                    flush=True,
                )
                if done[0] >= runs or elapsed >= max_seconds:
                    break
        finally:
            service.stop()
            daemon.stop()
        wall = time.monotonic() - t0
    return _fit(samples, slurpers, interval, wall, written=service.totals.written)


def _fit(
    samples: list[dict[str, float]], slurpers: int, interval: float, wall: float, written: int
) -> dict[str, Any]:
    total = samples[-1]["runs"]
    steady = [s for s in samples if s["runs"] >= total / 5]
    rss = [(s["runs"] / 1e6, s["rss_kb"] / 1024) for s in steady]
    mb_per_m, (low, high) = slope(rss), slope_interval(rss)
    blocks = [s for s in steady if "blocks" in s]
    blocks_per_m = (
        slope([(s["runs"] / 1e6, s["blocks"]) for s in blocks]) if len(blocks) > 1 else float("nan")
    )
    return {
        "slurpers": slurpers,
        "interval_s": interval,
        "runs": int(total),
        "runs_per_s": total / wall,
        "values_written": written,
        "wall_s": wall,
        "rss_start_mb": steady[0]["rss_kb"] / 1024,
        "rss_end_mb": samples[-1]["rss_kb"] / 1024,
        "rss_max_mb": max(s["rss_kb"] for s in samples) / 1024,
        "fds_min_max": [min(s["fds"] for s in steady), max(s["fds"] for s in steady)],
        "threads_min_max": [min(s["threads"] for s in steady), max(s["threads"] for s in steady)],
        "rrdcached_rss_end_mb": samples[-1]["rrdcached_rss_kb"] / 1024,
        "rss_slope_mb_per_million_runs": mb_per_m,
        "rss_slope_ci95_mb_per_million_runs": [low, high],
        "site_30_days_growth_mb": mb_per_m * SITE_RUNS / 1e6,
        "site_30_days_ci95_mb": [low * SITE_RUNS / 1e6, high * SITE_RUNS / 1e6],
        "site_target_verdict": verdict(low * SITE_RUNS / 1e6, high * SITE_RUNS / 1e6),
        "site_target_mb": TARGET_MB,
        "python_blocks_end": blocks[-1]["blocks"] if blocks else float("nan"),
        "python_blocks_per_million_runs": blocks_per_m,
        "samples": samples,
    }


def run(quick: bool = False) -> dict[str, Any]:
    """The ``python -m bench`` entry (opt-in): one measurement of the code in this checkout."""
    runs = 100_000 if quick else RUNS
    out = measure(SLURPERS, INTERVAL, runs, 5.0 if quick else 10.0, 1800.0)
    _print(out, "this checkout")
    out.pop("samples")
    return out


def _print(out: dict[str, Any], label: str) -> None:
    print_table(
        f"soak ({label}): {out['runs']:,} runs of {out['slurpers']:,} slurpers at {out['interval_s']:g} s",
        [
            ("runs/s", out["runs_per_s"], "achieved (scheduler + writer + rrdcached)"),
            ("RSS after warm-up (MB)", out["rss_start_mb"], ""),
            ("RSS at the end (MB)", out["rss_end_mb"], ""),
            (
                "slope (MB / million runs)",
                out["rss_slope_mb_per_million_runs"],
                "least squares after warm-up",
            ),
            (
                "slope, 95 % interval",
                "{:.2f} .. {:.2f}".format(*out["rss_slope_ci95_mb_per_million_runs"]),
                "",
            ),
            ("10,000 x 60 s x 30 days (MB)", out["site_30_days_growth_mb"], f"target < {TARGET_MB:g} MB"),
            ("30 days, 95 % interval (MB)", "{:,.0f} .. {:,.0f}".format(*out["site_30_days_ci95_mb"]), ""),
            ("target", out["site_target_verdict"], ""),
            ("Python blocks / million runs", out["python_blocks_per_million_runs"], "objects kept per run"),
            ("open files", "{}-{}".format(*out["fds_min_max"]), "min-max after warm-up"),
            ("threads", "{}-{}".format(*out["threads_min_max"]), "min-max after warm-up"),
        ],
    )


def report(before: dict[str, Any], after: dict[str, Any]) -> str:
    """The BENCHMARKS.md soak section: before and after the fix, side by side."""
    rows = [
        ("commit", "commit", "{}"),
        ("slurper runs", "runs", "{:,}"),
        ("runs/s achieved", "runs_per_s", "{:,.0f}"),
        ("wall time (s)", "wall_s", "{:,.0f}"),
        ("RSS after warm-up (MB)", "rss_start_mb", "{:.1f}"),
        ("RSS at the end (MB)", "rss_end_mb", "{:.1f}"),
        ("RSS slope (MB per million runs)", "rss_slope_mb_per_million_runs", "{:.2f}"),
        ("RSS slope, 95 % interval", "rss_slope_ci95_mb_per_million_runs", "{0[0]:.2f} .. {0[1]:.2f}"),
        ("10,000 slurpers at 60 s for 30 days (MB)", "site_30_days_growth_mb", "{:,.0f}"),
        ("30 days, 95 % interval (MB)", "site_30_days_ci95_mb", "{0[0]:,.0f} .. {0[1]:,.0f}"),
        ("target under 20 MB", "site_target_verdict", "{}"),
        ("Python heap blocks at the end", "python_blocks_end", "{:,.0f}"),
        ("Python heap blocks per million runs", "python_blocks_per_million_runs", "{:,.0f}"),
        ("open files (min-max)", "fds_min_max", "{0[0]}-{0[1]}"),
        ("threads (min-max)", "threads_min_max", "{0[0]}-{0[1]}"),
        ("rrdcached RSS at the end (MB)", "rrdcached_rss_end_mb", "{:.1f}"),
    ]
    lines = [
        "## Soak (opt-in: `make soak`, `python -m bench.bench_soak`)",
        "",
        (__doc__ or "").split("\n\n")[0].replace("\n", " "),
        "",
        f"Measured {before.get('date', '?')} (before) and {after.get('date', '?')} (after) on this machine.",
        f"Target: under {TARGET_MB:g} MB over 30 days at 10,000 slurpers every 60 s "
        f"({SITE_RUNS / 1e6:.0f} million runs).",
        "",
        "| | before the fix | after the fix |",
        "|---|---:|---:|",
    ]
    for label, key, form in rows:
        lines.append(f"| {label} | {_cell(before, key, form)} | {_cell(after, key, form)} |")
    lines += ["", "RSS (MB) against runs (millions), every sample:", "", "| | samples |", "|---|---|"]
    for name, m in (("before", before), ("after", after)):
        pts = ", ".join(f"{s['runs'] / 1e6:.2f}: {s['rss_kb'] / 1024:.0f}" for s in m.get("samples", [])[::3])
        lines.append(f"| {name} | {pts} |")
    return "\n".join(lines) + "\n"


def _cell(m: dict[str, Any], key: str, form: str) -> str:
    return form.format(m[key]) if key in m else "n/a"


def _commit() -> str:
    got = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return got.stdout.strip() or "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.bench_soak", description=(__doc__ or "").split("\n\n")[0]
    )
    ap.add_argument("--slurpers", type=int, default=SLURPERS)
    ap.add_argument("--interval", type=float, default=INTERVAL)
    ap.add_argument("--runs", type=int, default=RUNS, help="stop after this many slurper runs")
    ap.add_argument("--max-seconds", type=float, default=1800.0, help="or after this long")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--json", type=Path, help="write the figures and samples here")
    ap.add_argument("--report", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                    help="print the BENCHMARKS.md section from two --json files")  # fmt: skip
    args = ap.parse_args(argv)
    if args.report:
        before, after = (json.loads(p.read_text(encoding="utf-8")) for p in args.report)
        sys.stdout.write(report(before, after))
        return 0
    out = measure(args.slurpers, args.interval, args.runs, args.sample, args.max_seconds)
    out["label"], out["commit"] = args.label, _commit()
    out["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    _print(out, args.label)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "soak"
    sys.exit(main())

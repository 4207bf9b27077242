"""Shared helpers for benchmarks: medians, min-max, process figures, a tmp area, table printing."""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements (the machine is noisy: quote medians)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def rss_peak_mb() -> float:
    """Peak resident set size of this process in MB (VmHWM)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary directory on the work disk (RRD files are large: /tmp may be tmpfs)."""
    base = os.environ.get("REXMON_BENCH_DIR") or tempfile.gettempdir()
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def print_table(title: str, rows: Sequence[tuple[str, Any, str]]) -> None:
    print(f"\n## {title}")
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"  {name:<{width}}  {fmt(value):>14}  {note}")


def standalone(run: Callable[..., dict[str, Any]], doc: str | None) -> None:
    """``python -m bench.<name> [--quick] [--json FILE]``: run one benchmark on its own."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--quick", action="store_true", help="fewer rounds, smaller workload")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    out = run(quick=args.quick)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))

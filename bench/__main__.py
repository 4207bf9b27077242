"""The benchmark suite: ``make bench`` runs every area benchmark and writes BENCHMARKS.md at the repo root.

Each area module (``bench.bench_<name>``) runs in its own child process, so one that crashes, hangs or
leaks cannot spoil the others; its printed table is shown live and kept for the report. A module that is
missing or fails is reported in BENCHMARKS.md with its error, never skipped silently.

Run: ``.venv/bin/python -m bench [--quick] [--only NAME]... [--output BENCHMARKS.md]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: every area benchmark, in the order they run (the cheap ones first)
MODULES = (
    "bench_ingest",
    "bench_downtime",
    "bench_login",
    "bench_alarms",
    "bench_web",
    "bench_graph",
    "bench_webload",
    "bench_munin",
    "bench_scheduler",
    "bench_dcache",
)
#: long benchmarks, run only when named (``--only soak``, ``make soak``), each with its own time limit
OPT_IN = {"bench_soak": 2400.0}
#: the heading of a section BENCHMARKS.md keeps when the suite runs without the opt-in benchmarks
KEPT_SECTIONS = ("## Soak (opt-in",)
#: the whole suite must finish in 15 minutes; a module gets what is left, at most this much
MODULE_TIMEOUT_S = 600.0
SUITE_BUDGET_S = 15 * 60.0
#: result keys that compare rexmon with its peer
RATIO_WORDS = ("ratio", "speedup", "_vs_", "_over_")
#: ratios a module prints but does not return: (label, rexmon figure, peer figure), dotted keys
DERIVED = {
    "bench_scheduler": (
        ("rexmon / peer CPU", "rexmon.cpu_s_per_minute_steady", "apscheduler_noop_peer.cpu_s_per_minute"),
        ("rexmon / peer lag p99", "rexmon.lag_p99_s", "apscheduler_noop_peer.lag_p99_s"),
        ("rexmon / peer peak RSS", "rexmon.rss_peak_mb", "apscheduler_noop_peer.rss_peak_mb"),
    ),
}


@dataclass
class Outcome:
    """What one area benchmark gave: status ok, missing or failed; its figures and printed table."""

    name: str
    status: str
    seconds: float = 0.0
    result: dict[str, Any] = field(default_factory=dict)
    output: str = ""
    error: str = ""


# -- the child: import one module, run it, hand the result back as JSON ----------------------------------
def run_child(name: str, quick: bool, out: Path) -> int:
    """Import ``bench.<name>`` and run it; write {status, result|error} to ``out``."""
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        status = "missing" if exc.name in (f"bench.{name}",) else "failed"
        out.write_text(json.dumps({"status": status, "error": f"{type(exc).__name__}: {exc}"}))
        return 0
    except Exception:
        out.write_text(json.dumps({"status": "failed", "error": traceback.format_exc(limit=8)}))
        return 0
    try:
        result = module.run(quick=quick)
    except Exception:
        out.write_text(json.dumps({"status": "failed", "error": traceback.format_exc(limit=8)}))
        return 0
    out.write_text(json.dumps({"status": "ok", "result": result}, default=str))
    return 0


def spawn(name: str, quick: bool, timeout: float) -> Outcome:
    """Run one area benchmark in a child process, echoing its output as it comes."""
    with tempfile.TemporaryDirectory(prefix="rexmon-bench-") as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "bench", "--child", name, "--result", str(result_file)]
        if quick:
            cmd.append("--quick")
        start = time.monotonic()
        lines: list[str] = []
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        timed_out = _pump(proc, lines, start + timeout)
        seconds = time.monotonic() - start
        output = "".join(lines)
        if timed_out:
            return Outcome(name, "failed", seconds, output=output, error=f"timed out after {timeout:.0f} s")
        if not result_file.exists():
            tail = "".join(lines[-20:])
            return Outcome(name, "failed", seconds, output=output, error=f"exit {proc.returncode}\n{tail}")
        data = json.loads(result_file.read_text())
    return Outcome(name, data["status"], seconds, data.get("result") or {}, output, data.get("error", ""))


def _pump(proc: subprocess.Popen[str], lines: list[str], deadline: float) -> bool:
    """Echo and keep the child's output until it exits; kill it at the deadline (True if so)."""
    import selectors

    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    while True:
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            return True
        if sel.select(timeout=1.0):
            line = proc.stdout.readline()
            if not line:
                break
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
    proc.wait()
    return False


# -- the machine ---------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    """Cores, memory, CPU model, kernel, rrdtool and Python versions, load average now."""
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    try:
        rrd = subprocess.run(["rrdtool", "--version"], capture_output=True, text=True, timeout=10)
        rrd_version = " ".join(rrd.stdout.split()[:2])  # "RRDtool 1.7.2"
    except (OSError, IndexError, subprocess.SubprocessError) as exc:
        rrd_version = f"unavailable ({exc})"
    return {
        "cores": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "cpu": model,
        "kernel": f"{platform.system()} {platform.release()}",
        "rrdtool": rrd_version,
        "python": platform.python_version(),
    }


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- the report ----------------------------------------------------------------------------------------
def is_summary(value: Any) -> bool:
    return isinstance(value, dict) and {"median", "min", "max"} <= value.keys()


def flatten(result: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) for every figure; a median/min/max summary stays one figure."""
    if isinstance(result, dict) and not is_summary(result):
        for key, value in result.items():
            yield from flatten(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, result


def show(value: Any) -> str:
    """A figure as the report prints it: summaries as ``median [min-max] (n runs)``."""
    if is_summary(value):
        n = f" ({int(value['n'])} runs)" if "n" in value else ""
        return f"{_num(value['median'])} [{_num(value['min'])}-{_num(value['max'])}]{n}"
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, list):
        return ", ".join(show(v) for v in value[:10]) + (" ..." if len(value) > 10 else "")
    return str(value)


def _num(v: float) -> str:
    if v != v:  # NaN
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def ratios(name: str, result: dict[str, Any]) -> list[tuple[str, Any]]:
    """The figures that compare rexmon with its peer (by their key, or derived from two figures)."""
    flat = dict(flatten(result))
    out = [(k, v) for k, v in flat.items() if any(w in k.rsplit(".", 1)[-1] for w in RATIO_WORDS)]
    for label, ours, peer in DERIVED.get(name, ()):
        a, b = flat.get(ours), flat.get(peer)
        if isinstance(a, int | float) and isinstance(b, int | float) and b:
            out.append((label, a / b))
    return out


def report(outcomes: Sequence[Outcome], info: dict[str, str], quick: bool, wall: float) -> str:
    """BENCHMARKS.md: the machine, a summary of ratios, then each benchmark's table and figures."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` (`python -m bench{' --quick' if quick else ''}`) on {now}; "
        f"the whole suite took {wall:.0f} s. Do not edit: run it again.",
        "",
        "Every figure comes from this run: each benchmark measures its peer in the same run on the same "
        "machine, repeats its measurement and quotes the median with [min-max]. The machine has few cores "
        "and may be shared (other test runs at the same time), so medians are what to compare; the load "
        "average before and after the suite is shown.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        "",
        "## Summary",
        "",
        "| benchmark | status | time (s) | rexmon vs peer |",
        "|---|---|---:|---|",
    ]
    for o in outcomes:
        cmp = (
            "; ".join(f"{k} = {show(v)}" for k, v in ratios(o.name, o.result))
            if o.status == "ok"
            else o.error
        )
        cmp = cmp.replace("\n", " ").replace("|", "\\|")[:400]
        lines.append(f"| {o.name} | {o.status} | {o.seconds:.0f} | {cmp} |")
    for o in outcomes:
        lines += ["", f"## {o.name}", "", f"Status: **{o.status}** ({o.seconds:.0f} s)."]
        doc = _module_doc(o.name)
        if doc:
            lines += ["", doc]
        if o.error:
            lines += ["", "Error:", "", "```", o.error.strip(), "```"]
        table = _printed_tables(o.output)
        if table:
            lines += ["", "As printed:", "", "```", table, "```"]
        if o.result:
            lines += ["", "| figure | value |", "|---|---|"]
            lines += [f"| {k} | {show(v)} |" for k, v in flatten(o.result)]
    return "\n".join(lines) + "\n"


def _module_doc(name: str) -> str:
    """The first paragraph of the module's docstring (read from the file: the module may not import)."""
    path = ROOT / "bench" / f"{name}.py"
    if not path.exists():
        return ""
    import ast

    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except SyntaxError:
        return ""
    return doc.split("\n\n", 1)[0].replace("\n", " ")


def _printed_tables(output: str) -> str:
    """The ``## title`` tables a module printed (print_table), without log lines around them."""
    keep: list[str] = []
    inside = False
    for line in output.splitlines():
        if line.startswith("## "):
            inside = True
        elif inside and not line.startswith("  "):
            inside = False
        if inside:
            keep.append(line.rstrip())
    return "\n".join(keep).strip() or output.strip()[-3000:]


def kept_sections(path: Path) -> str:
    """The KEPT_SECTIONS of an existing report (the soak's before/after figures, measured apart)."""
    try:
        old = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    out = []
    for heading in KEPT_SECTIONS:
        at = old.find("\n" + heading)
        if at >= 0:
            end = old.find("\n## ", at + 1)
            out.append(old[at : end if end >= 0 else len(old)].rstrip() + "\n")
    return "".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller workloads (a smoke run)")
    ap.add_argument("--only", action="append", metavar="NAME", help="run only this benchmark (repeatable)")
    ap.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return run_child(args.child, args.quick, args.result)
    names = list(MODULES)
    if args.only:
        wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in args.only]
        known = (*MODULES, *OPT_IN)
        unknown = [n for n in wanted if n not in known]
        if unknown:
            ap.error(f"unknown benchmark(s) {', '.join(unknown)} (known: {', '.join(known)})")
        names = [n for n in known if n in wanted]
    info = machine()
    info["load average before (1, 5, 15 min)"] = load_average()
    start = time.monotonic()
    outcomes = []
    for name in names:
        left = OPT_IN.get(name) or SUITE_BUDGET_S - (time.monotonic() - start)
        print(f"\n=== {name} ===", flush=True)
        if left <= 10:
            outcomes.append(Outcome(name, "failed", error="not run: the 15-minute suite budget was used up"))
            continue
        outcomes.append(spawn(name, args.quick, left if name in OPT_IN else min(MODULE_TIMEOUT_S, left)))
        o = outcomes[-1]
        print(f"=== {name}: {o.status} in {o.seconds:.0f} s {o.error.strip()[-300:]}", flush=True)
    wall = time.monotonic() - start
    info["load average after (1, 5, 15 min)"] = load_average()
    text = report(outcomes, info, args.quick, wall) + kept_sections(args.output)
    args.output.write_text(text, encoding="utf-8")
    print(f"\nwrote {args.output} ({wall:.0f} s)")
    return 0 if all(o.status == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

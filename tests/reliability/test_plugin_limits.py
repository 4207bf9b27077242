"""Plugins that misbehave: endless or huge output, children that leave the process group or stay behind.

Each run ends within its timeout, holds at most ``max_output`` bytes, and leaves no process running.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from rexmon.cli import cli
from rexmon.config import build_slurper, load
from rexmon.runner import Runner, RunResult
from tests.reliability.helpers import wait_for

#: a bound on every run below (their timeouts are 3 s): a run still going after this is a hang
BOUND = 60.0
CONFIG = 'if [ "$1" = config ]; then echo "x.label x"; exit 0; fi\n'


def plugin(tmp_path: Path, name: str, fetch: str) -> Path:
    """A Munin plugin: ``config`` declares field x, a fetch runs ``fetch`` (sh)."""
    path = tmp_path / "plugins" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\n" + CONFIG + fetch)
    path.chmod(0o755)
    return path


def run_bounded(write_config: Callable[..., Path], plugin_path: Path, extra: str = "") -> RunResult:
    """One run of a munin slurper for the plugin, in a thread that must finish within BOUND."""
    cfg = load(
        write_config(f'[[slurper]]\nid = "p"\ntype = "munin"\ntimeout = 3\nplugin = "{plugin_path}"\n{extra}')
    )
    slurper = build_slurper(cfg.slurpers[0], cfg.registry)
    runner = Runner(cfg, [slurper], dry_run=True)
    out: list[RunResult] = []
    worker = threading.Thread(target=lambda: out.append(runner.run(slurper)), daemon=True)
    worker.start()
    worker.join(BOUND)
    assert not worker.is_alive(), f"the run was still going after {BOUND:g} s (a worker held forever)"
    return out[0]


def gone(pid: int) -> bool:
    """The process no longer runs (no such pid, or a zombie waiting for init)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def pids_in(path: Path) -> list[int]:
    wait_for(lambda: path.exists() and path.read_text().strip() != "", 10, f"{path} written by the plugin")
    return [int(p) for p in path.read_text().split()]


def test_endless_output(write_config, tmp_path: Path) -> None:
    """A plugin printing without end (`yes`): the run fails naming max_output once 1 MiB is read, the plugin is killed."""  # noqa: E501
    endless = plugin(tmp_path, "endless", "exec yes 'x.value 1'\n")
    result = run_bounded(write_config, endless, "max_output = 1048576\n")
    assert result.error is not None
    assert "printed more than 1 MiB (the slurper's max_output)" in result.error
    assert result.updates == []


def test_hundred_megabytes_of_valid_lines(write_config, runner, tmp_path: Path) -> None:
    """100 MB of valid 'field.value' lines: refused past the default cap (4 MiB), nothing archived, said in the run's line."""  # noqa: E501
    huge = plugin(tmp_path, "huge", "yes 'x.value 1' | head -c 100000000\n")
    cfg = write_config(f'[[slurper]]\nid = "huge"\ntype = "munin"\ntimeout = 30\nplugin = "{huge}"\n')
    result = runner.invoke(cli, ["--config", str(cfg), "run", "--once"])
    assert result.exit_code == 1
    assert "huge: FAILED: " in result.output
    assert "printed more than 4 MiB (the slurper's max_output)" in result.output
    assert not (tmp_path / "rrd" / "huge").exists()


def test_child_that_left_the_group_keeps_stdout_open(write_config, tmp_path: Path) -> None:
    """A plugin starts `setsid sleep 300` holding its stdout, prints and exits: its value is read, the run returns, the child is killed."""  # noqa: E501
    pidfile = tmp_path / "child.pid"
    p = plugin(tmp_path, "daemonising", f"setsid sleep 300 &\necho $! > {pidfile}\necho 'x.value 7'\n")
    result = run_bounded(write_config, p)
    assert result.error is None, result.error
    assert [u.value for u in result.updates] == [7.0]
    (child,) = pids_in(pidfile)
    wait_for(lambda: gone(child), 10, f"the setsid child {child} to die")


def test_hung_plugin_whose_setsid_child_holds_the_pipe(write_config, tmp_path: Path) -> None:
    """A plugin hangs and its `setsid` child holds stdout: the run times out after 3 s instead of waiting for the pipe, both are killed."""  # noqa: E501
    pidfile = tmp_path / "pids"
    p = plugin(tmp_path, "hung", f"setsid sleep 300 &\necho $! $$ > {pidfile}\nsleep 300\n")
    result = run_bounded(write_config, p)
    assert result.error is not None and "timed out after 3 s" in result.error
    for pid in pids_in(pidfile):
        wait_for(lambda pid=pid: gone(pid), 10, f"process {pid} of the hung plugin to die")


@pytest.mark.parametrize(
    "start",
    [
        "sleep 300 </dev/null >/dev/null 2>&1 &",  # a background child in the plugin's group
        "setsid sh -c 'sleep 300' </dev/null >/dev/null 2>&1 &",  # a daemonised helper, own session
    ],
    ids=["background", "setsid-detached"],
)
def test_background_child_left_behind(write_config, tmp_path: Path, start: str) -> None:
    """A plugin leaves a child running after it exits (its pipes closed): the run succeeds and the child is killed, every run."""  # noqa: E501
    pidfile = tmp_path / "bg.pid"
    p = plugin(tmp_path, "leaver", f"{start}\necho $! > {pidfile}\necho 'x.value 3'\n")
    for _ in range(2):
        pidfile.unlink(missing_ok=True)
        result = run_bounded(write_config, p)
        assert result.error is None, result.error
        assert [u.value for u in result.updates] == [3.0]
        (child,) = pids_in(pidfile)
        # the child of a setsid helper is a grandchild: find every process still carrying the plugin's pid
        wait_for(lambda child=child: gone(child), 10, f"the left-behind child {child} to die")
        assert not _sleepers_of(tmp_path), "a sleep 300 started by the plugin is still running"


def _sleepers_of(tmp_path: Path) -> list[int]:
    """``sleep 300`` processes whose environment says they came from a plugin under ``tmp_path``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{name}/cmdline").read_bytes()
            env = Path(f"/proc/{name}/environ").read_bytes()
        except OSError:
            continue
        if cmd == b"sleep\x00300\x00" and str(tmp_path).encode() in env and not gone(int(name)):
            found.append(int(name))
    return found


def test_daemonising_plugin_under_the_scheduler_with_one_worker(write_config, tmp_path: Path) -> None:
    """`rexmon run` with `workers = 1` and a plugin whose `setsid` child keeps its stdout open: it and a good plugin both keep running every second; no child is left."""  # noqa: E501
    from rexmon.service import Service

    runs = tmp_path / "runs"
    runs.mkdir()
    holder = plugin(
        tmp_path,
        "holder",
        f"echo run >> {runs / 'holder'}\nsetsid sleep 300 &\n"
        f"echo $! >> {runs / 'children'}\necho 'x.value 1'\n",
    )
    good = plugin(tmp_path, "good", f"echo run >> {runs / 'good'}\necho 'x.value 5'\n")
    cfg = load(
        write_config(
            "[scheduler]\nworkers = 1\njitter = 0\n"
            f'[[slurper]]\nid = "holder"\ntype = "munin"\ninterval = 1\ntimeout = 2\nplugin = "{holder}"\n'
            f'[[slurper]]\nid = "good"\ntype = "munin"\ninterval = 1\ntimeout = 2\nplugin = "{good}"\n'
        )
    )
    service = Service(cfg, flush_interval=0.2)
    service.start()

    def count(name: str) -> int:
        path = runs / name
        return len(path.read_text().splitlines()) if path.exists() else 0

    try:
        wait_for(lambda: count("holder") >= 4 and count("good") >= 4, BOUND, "four runs of each plugin")
    finally:
        service.stop()
    for child in pids_in(runs / "children"):
        wait_for(lambda child=child: gone(child), 10, f"the setsid child {child} to die")

"""Scale-out: two collector hosts share the work of one config, one rrdcached (TCP) and one PostgreSQL.

``rexmon run --shard 1/2`` and ``--shard 2/2`` run the same 40 Munin plugins (1-2 s intervals) as two
long-running processes; only the first evaluates alarms (a conf.d override turns it off on the second).
A user sees: every plugin run by one host only, every metric archived once and readable, no archive
errors, and each alarm notified once, also when the breach is collected by the host that does not
evaluate, while a breach under a downtime stays quiet.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rexmon.cli import cli
from rexmon.config import load
from rexmon.service import select_slurpers, shard_of
from tests.fixtures.rrdcached import RRDCached, start_rrdcached

ROOT = Path(__file__).resolve().parents[2]
SLURPERS = [f"node{i:02d}" for i in range(40)]
#: breaches critical on the host that does not evaluate: must be notified once, through the inbox
HOT = next(s for s in SLURPERS if shard_of(s, 2) == 2)
#: breaches critical on the evaluating host, under a downtime: must stay quiet
QUIET = next(s for s in SLURPERS if shard_of(s, 2) == 1)


def write_plugins(tmp: Path) -> None:
    """One Munin plugin per slurper: it logs its parent (the rexmon host) and reports its run count."""
    (tmp / "plugins").mkdir()
    (tmp / "runs").mkdir()
    for sid in SLURPERS:
        temp = 95 if sid in (HOT, QUIET) else 20
        log = tmp / "runs" / f"{sid}.log"
        path = tmp / "plugins" / sid
        path.write_text(
            "#!/bin/sh\n"
            'if [ "$1" = config ]; then\n'
            '  printf "graph_title t\\nruns.label runs\\ntemp.label temp\\n"; exit 0\n'
            "fi\n"
            f'echo "$PPID" >> {log}\n'
            f'echo "runs.value $(wc -l < {log})"\n'
            f'echo "temp.value {temp}"\n'
        )
        path.chmod(0o755)


def write_hosts(tmp: Path, daemon: RRDCached, db_url: str, hook: str) -> tuple[Path, Path]:
    """Two hosts' etc/ with the same rexmon.toml; conf.d sets each host's state and who evaluates."""
    slurpers = "".join(
        f'[[slurper]]\nid = "{sid}"\ntype = "munin"\ninterval = {1 + i % 2}\ntimeout = 10\n'
        f'plugin = "{tmp / "plugins" / sid}"\n\n'
        for i, sid in enumerate(SLURPERS)
    )
    common = (
        f'[archive]\nrrd_dir = "{daemon.base_dir}"\nstep = 60\nrrdcached = "{daemon.address}"\n\n'
        f'[database]\nurl = "{db_url}"\n\n'
        "[scheduler]\njitter = 0\nworkers = 8\n\n"
        f'{slurpers}[[alarm]]\nmatch = "*/temp"\nwarning = "80"\ncritical = "90"\n'
        # a busy test machine can delay a value by seconds: staleness is not what this test is about
        'stale = "5m"\n\n'
        f'[[notify]]\nname = "hook"\nurl = "{hook}"\n'
    )
    paths = []
    for name, evaluate in (("evaluator", True), ("collector", False)):
        etc = tmp / name / "etc"
        (etc / "conf.d").mkdir(parents=True)
        (etc / "rexmon.toml").write_text(common)
        (etc / "conf.d" / "50-host.toml").write_text(
            f'[scheduler]\nstate_dir = "{tmp / name / "state"}"\nevaluate_alarms = {str(evaluate).lower()}\n'
        )
        paths.append(etc / "rexmon.toml")
    return paths[0], paths[1]


def start_host(cfg: Path, shard: str, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-c", "from rexmon.cli import main; main()", "--config", str(cfg), "run",
            "--shard", shard]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def runs(tmp: Path, sid: str) -> list[int]:
    """The parent pid of each run of the slurper's plugin (which host ran it)."""
    path = tmp / "runs" / f"{sid}.log"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def invoke(runner: Any, cfg: Path, *args: str) -> str:
    result = runner.invoke(cli, ["--config", str(cfg), *args])
    assert result.exit_code == 0, result.output
    return str(result.stdout)


@pytest.fixture
def daemon(tmp_path: Path) -> Any:
    d = start_rrdcached(tmp_path / "rrd", tmp_path / "rrdcached", tcp=True)
    yield d
    d.stop()


def test_two_shards_archive_every_metric_once_and_notify_once(
    tmp_path: Path, daemon: RRDCached, pg_url: str, http_receiver: Any, runner: Any
) -> None:
    write_plugins(tmp_path)
    evaluator, collector = write_hosts(tmp_path, daemon, pg_url, http_receiver.url())
    invoke(runner, evaluator, "db", "upgrade")
    invoke(runner, evaluator, "downtime", "add", "--scope", f"{QUIET}/*", "--duration", "1h",
           "--reason", "scale-out test", "--author", "test")  # fmt: skip
    hosts = {
        1: start_host(evaluator, "1/2", tmp_path / "evaluator.log"),
        2: start_host(collector, "2/2", tmp_path / "collector.log"),
    }
    try:
        deadline = time.monotonic() + 120
        while min(len(runs(tmp_path, s)) for s in SLURPERS) < 3:
            assert all(p.poll() is None for p in hosts.values()), _logs(tmp_path)
            assert time.monotonic() < deadline, "slurpers did not run 3 times within 120 s\n" + _logs(
                tmp_path
            )
            time.sleep(0.2)
        time.sleep(2.0)  # a round of the writer and of the evaluator after the last checked run
    finally:
        # as systemd stops the unit (KillMode=mixed): SIGTERM to each collector, together (a host left
        # running alone would see the other's go stale), then SIGKILL to any plugin still running
        for p in hosts.values():
            os.kill(p.pid, signal.SIGTERM)
        for p in hosts.values():
            p.wait(60)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
    logs = _logs(tmp_path)
    assert all(p.returncode == 0 for p in hosts.values()), logs
    assert " ERROR " not in logs and "archive:" not in logs, logs

    # every plugin was run, and only by the host of its shard
    for sid in SLURPERS:
        assert set(runs(tmp_path, sid)) == {hosts[shard_of(sid, 2)].pid}, sid

    # every metric archived once: present, readable, its last value the run count of one host
    last = {m["id"]: m["value"] for m in json.loads(invoke(runner, evaluator, "metrics", "--json"))}
    for sid in SLURPERS:
        n = len(runs(tmp_path, sid))
        # one run may be in flight at shutdown, and a run late into the second of the next one is
        # refused by the archive's one-value-per-second rule: never more than the host ran
        assert n - 2 <= last[f"{sid}/runs"] <= n, (sid, n, last[f"{sid}/runs"])
        assert last[f"rexmon/{sid}.errors"] == 0
        assert f"rexmon/{sid}.duration" in last
    rrds = sorted(daemon.base_dir.rglob("*.rrd"))
    assert {p.relative_to(daemon.base_dir).as_posix()[:-4] for p in rrds} == set(last)
    for path in rrds:
        info = subprocess.run(["rrdtool", "info", str(path)], capture_output=True, text=True)
        assert info.returncode == 0 and "ds[value].type" in info.stdout, (path, info.stderr)

    # one notification for the breach collected by the non-evaluating host; none under the downtime
    assert [b["title"] for b in http_receiver.bodies] == [f"[rexmon] CRITICAL {HOT}/temp = 95"]
    states = {s["metric_id"]: s for s in json.loads(invoke(runner, evaluator, "alarms", "list", "--json"))}
    assert states[f"{HOT}/temp"]["state"] == "CRITICAL"
    assert states[f"{QUIET}/temp"]["state"] == "CRITICAL"
    assert {s["state"] for m, s in states.items() if m not in (f"{HOT}/temp", f"{QUIET}/temp")} == {"OK"}


def _logs(tmp: Path) -> str:
    return "\n".join(
        f"--- {name}:\n{(tmp / f'{name}.log').read_text(errors='replace')[-4000:]}"
        for name in ("evaluator", "collector")
        if (tmp / f"{name}.log").exists()
    )


ID_SHAPES = ["node{:05d}-cpu", "s{:05d}", "fts.link{}.example.org", "{}"]


@pytest.mark.parametrize("shape", ID_SHAPES)
@pytest.mark.parametrize("k", [2, 3, 4])
def test_shard_of_balances_10000_ids_within_5_percent(shape: str, k: int) -> None:
    counts = Counter(shard_of(shape.format(i), k) for i in range(10_000))
    assert sorted(counts) == list(range(1, k + 1))
    assert max(abs(c - 10_000 / k) for c in counts.values()) <= 0.05 * 10_000 / k, counts


@pytest.mark.parametrize("shape", ID_SHAPES)
@pytest.mark.parametrize("k", [5, 8, 10, 16])
def test_shard_of_on_more_hosts_is_as_even_as_chance(shape: str, k: int) -> None:
    """Each shard within 4 standard deviations of a random assignment (12% of N/k for 10 hosts)."""
    # with more hosts a shard holds fewer ids, and chance alone spreads them by more than 5%
    n, p = 10_000, 1 / k
    counts = Counter(shard_of(shape.format(i), k) for i in range(n))
    assert sorted(counts) == list(range(1, k + 1))
    assert max(abs(c - n * p) for c in counts.values()) <= 4 * math.sqrt(n * p * (1 - p)), counts


def test_shards_partition_the_configured_slurpers(write_config: Any) -> None:
    """Every enabled slurper is run by exactly one of N hosts, whatever N."""
    body = "".join(f'[[slurper]]\nid = "{s}"\ntype = "munin"\nplugin = "/bin/true"\n\n' for s in SLURPERS)
    cfg = load(write_config(body))
    for k in (1, 2, 3, 7):
        chosen = [s.id for i in range(1, k + 1) for s in select_slurpers(cfg, f"{i}/{k}")]
        assert sorted(chosen) == sorted(SLURPERS)

"""Scale-out: a collector that does not evaluate alarms hands its values to the one that does.

Two `rexmon run --once --shard` hosts share one database (SQLite file, and a real PostgreSQL); a Munin
plugin breaching its tolerance on the NON-evaluating shard is notified exactly once through a loopback
json:// receiver, also when the evaluator is killed with SIGKILL between draining the inbox and its commit.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from rexmon.cli import cli
from rexmon.service import shard_of

ROOT = Path(__file__).resolve().parents[2]
#: the collector's slurper (shard 2 of 2) and the evaluator's (shard 1 of 2)
COLLECTED, EVALUATED = "room", "lab"


def plugin(tmp_path: Path, name: str, value: float) -> Path:
    """A Munin plugin (warning 80, critical 90) printing the number in <name>.txt."""
    (tmp_path / f"{name}.txt").write_text(f"{value}\n")
    path = tmp_path / "plugins" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = config ]; then printf "graph_title t\\ntemp.label temp\\ntemp.warning 80\\n'
        'temp.critical 90\\n"; exit 0; fi\n'
        f'echo "temp.value $(cat {tmp_path / f"{name}.txt"})"\n'
    )
    path.chmod(0o755)
    return path


def host(tmp_path: Path, role: str, db_url: str, hook: str, evaluate: bool) -> Path:
    """One host's rexmon.toml: both slurpers configured (sharding picks), one shared database."""
    home = tmp_path / role
    home.mkdir()
    slurpers = "".join(
        f'[[slurper]]\nid = "{sid}"\ntype = "munin"\ninterval = 60\nplugin = "{tmp_path / "plugins" / sid}"\n'
        for sid in (COLLECTED, EVALUATED)
    )
    path = home / "rexmon.toml"
    path.write_text(
        f'[archive]\nrrd_dir = "{home / "rrd"}"\nstep = 60\n\n'
        f'[database]\nurl = "{db_url}"\n\n'
        f'[scheduler]\nstate_dir = "{home / "state"}"\njitter = 0\n'
        f"evaluate_alarms = {str(evaluate).lower()}\n\n"
        f'{slurpers}\n[[notify]]\nname = "hook"\nurl = "{hook}"\n'
    )
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def hosts(tmp_path: Path, db_url: str, http_receiver: Any) -> tuple[Path, Path]:
    """(evaluator config, collector config); the collector's plugin breaches critical."""
    assert shard_of(COLLECTED, 2) == 2 and shard_of(EVALUATED, 2) == 1
    plugin(tmp_path, COLLECTED, 95)
    plugin(tmp_path, EVALUATED, 20)
    evaluator = host(tmp_path, "evaluator", db_url, http_receiver.url(), evaluate=True)
    return evaluator, host(tmp_path, "collector", db_url, http_receiver.url(), evaluate=False)


def run_once(runner: Any, cfg: Path, shard: str) -> None:
    result = runner.invoke(cli, ["--config", str(cfg), "run", "--once", "--shard", shard])
    assert result.exit_code == 0, result.output


def listed(runner: Any, cfg: Path) -> dict[str, dict[str, Any]]:
    result = runner.invoke(cli, ["--config", str(cfg), "alarms", "list", "--json"])
    assert result.exit_code == 0, result.output
    return {s["metric_id"]: s for s in json.loads(result.stdout)}


def titles(receiver: Any) -> list[str]:
    return [b["title"] for b in receiver.bodies]


def test_breach_on_the_non_evaluating_shard_is_notified_once(tmp_path, hosts, runner, http_receiver) -> None:
    evaluator, collector = hosts
    run_once(runner, collector, "2/2")
    assert titles(http_receiver) == [] and listed(runner, evaluator) == {}  # nothing judged there
    run_once(runner, evaluator, "1/2")
    assert titles(http_receiver) == ["[rexmon] CRITICAL room/temp = 95"]
    states = listed(runner, evaluator)
    assert states["room/temp"]["state"] == "CRITICAL" and states["lab/temp"]["state"] == "OK"
    # the same value collected again: evaluated, nothing new to tell
    time.sleep(1.1)  # the archive takes one value per second per metric
    run_once(runner, collector, "2/2")
    run_once(runner, evaluator, "1/2")
    run_once(runner, evaluator, "1/2")
    assert titles(http_receiver) == ["[rexmon] CRITICAL room/temp = 95"]
    # a recovery collected on the non-evaluating shard is told too
    (tmp_path / f"{COLLECTED}.txt").write_text("20\n")
    time.sleep(1.1)
    run_once(runner, collector, "2/2")
    run_once(runner, evaluator, "1/2")
    assert titles(http_receiver) == ["[rexmon] CRITICAL room/temp = 95", "[rexmon] RECOVERY room/temp = 20"]


def _rexmon(cfg: Path, shard: str) -> list[str]:
    code = "from rexmon.cli import main; main()"
    return [sys.executable, "-c", code, "--config", str(cfg), "run", "--once", "--shard", shard]


def _wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_evaluator_killed_between_drain_and_commit_loses_nothing(
    hosts, db_url, runner, http_receiver
) -> None:
    evaluator, collector = hosts
    run_once(runner, collector, "2/2")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    engine = create_engine(db_url, isolation_level="AUTOCOMMIT")
    holder = create_engine(db_url)
    blocked = text(
        "SELECT pid FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO alarm_outbox%'"
    )
    try:
        with holder.connect() as lock:
            # the evaluator drains the inbox, evaluates, and then waits for this lock to write its outbox row
            lock.execute(text("LOCK TABLE alarm_outbox IN EXCLUSIVE MODE"))
            proc = subprocess.Popen(_rexmon(evaluator, "1/2"), env=env, start_new_session=True)
            try:
                with engine.connect() as conn:
                    _wait_for(lambda: conn.execute(blocked).first() is not None, "the evaluator's commit")
                    (backend,) = conn.execute(blocked).one()
            finally:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            lock.rollback()
        with engine.connect() as conn:  # the server ends the dead client's session and its transaction
            gone = text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid")
            _wait_for(lambda: conn.execute(gone, {"pid": backend}).first() is None, "the dead session")
        assert titles(http_receiver) == [] and listed(runner, evaluator) == {}
        done = subprocess.run(_rexmon(evaluator, "1/2"), env=env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert titles(http_receiver) == ["[rexmon] CRITICAL room/temp = 95"]
        assert listed(runner, evaluator)["room/temp"]["state"] == "CRITICAL"
        again = subprocess.run(_rexmon(evaluator, "1/2"), env=env, capture_output=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert titles(http_receiver) == ["[rexmon] CRITICAL room/temp = 95"]
    finally:
        engine.dispose()
        holder.dispose()


def test_a_backlog_larger_than_one_chunk_is_drained_oldest_first(hosts, runner, http_receiver) -> None:
    from alarms.inbox import CHUNK, InboxSink
    from alarms.observation import Observation
    from alarms.pipeline import AlarmPipeline, build
    from rexmon.config import load

    evaluator, collector = hosts
    inbox, pipeline = build(load(collector)), build(load(evaluator))
    assert isinstance(inbox, InboxSink) and isinstance(pipeline, AlarmPipeline)
    t0 = 1_700_000_000.0
    crit = {"warning": "~:80", "critical": "~:90"}
    # two rounds of CHUNK + 1 metrics: the first all breaching, the second (newer) all recovered
    for i, value in enumerate((95, 20)):
        inbox.observe([Observation(f"room/m{n}", t0 + i, value, **crit) for n in range(CHUNK + 1)], t0 + i)
    inbox.close()
    pipeline.tick(t0 + 2)
    pipeline.close()
    states = listed(runner, evaluator)
    assert len(states) == CHUNK + 1 and {s["state"] for s in states.values()} == {"OK"}
    assert {s["value"] for s in states.values()} == {20}
    # every problem and every recovery told once (one message per evaluated chunk)
    assert told(http_receiver, "CRITICAL") == told(http_receiver, "RECOVERY") == CHUNK + 1


def told(receiver: Any, label: str) -> int:
    """How many notices of ``label`` the messages carried ("[rexmon] 3 alarms: 2 CRITICAL, 1 RECOVERY")."""
    total = 0
    for title in titles(receiver):
        grouped = re.search(rf"(\d+) {label}\b", title)
        total += int(grouped.group(1)) if grouped else title.startswith(f"[rexmon] {label} ")
    return total

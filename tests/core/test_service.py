"""The service: scheduling, isolation of bad slurpers, health metrics, checkpoints, sharding, the CLI."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import field
from pathlib import Path

import pytest

from rexmon.cli import cli
from rexmon.config import load
from rexmon.service import Service, select_slurpers, shard_of
from rrd.archive import Archive
from slurpers.api import CollectContext, MetricSpec, Reading, Slurper, SlurperError, settings


@settings
class FakeSettings:
    values: dict[str, float] = field(default_factory=dict)


class ScriptedSlurper(Slurper[FakeSettings]):
    """A slurper whose behaviour a test scripts: values, an exception, a hang, or a checkpoint."""

    def __init__(self, sid: str, behaviour: object, interval: float = 1.0, timeout: float = 1.0) -> None:
        super().__init__(sid, FakeSettings(), interval=interval, timeout=timeout)
        self.behaviour = behaviour
        self.runs = 0
        self.archived: list[dict[str, object]] = []
        self.release = threading.Event()

    def metrics(self) -> Sequence[MetricSpec]:
        return [MetricSpec("jobs.*", "GAUGE", unit="jobs", min=0)]

    def collect(self, ctx: CollectContext) -> Sequence[Reading]:
        self.runs += 1
        b = self.behaviour
        if b == "raise":
            raise SlurperError("source said no")
        if b == "crash":
            raise ZeroDivisionError("bug in plugin")
        if b == "hang":
            self.release.wait(30)
            return []
        if b == "garbage":
            return ["not a reading"]  # type: ignore[list-item]
        if b == "evil":
            return [Reading("../../etc/passwd", 1.0)]
        if b == "checkpoint":
            n = int(ctx.state.get("n", 0)) + 1
            ctx.new_state = {"n": n}
            return [Reading("jobs.n", float(n))]
        return [Reading("jobs.running", 5.0), Reading("jobs.idle", None)]

    def on_archived(self, ctx: CollectContext) -> None:
        self.archived.append(dict(ctx.new_state or {}))


def test_run_once_isolates_every_kind_of_failure(write_config, tmp_path) -> None:
    cfg = load(write_config(""))
    slurpers = [ScriptedSlurper(n, n) for n in ("good", "raise", "crash", "hang", "garbage", "evil")]
    results = {r.slurper_id: r for r in Service(cfg, slurpers=slurpers).run_once()}
    assert results["good"].error is None
    assert results["raise"].error == "source said no"
    assert "internal error in slurper crash: ZeroDivisionError" in (results["crash"].error or "")
    assert "did not return within its timeout of 1 s" in (results["hang"].error or "")
    assert "returned str, not a Reading" in (results["garbage"].error or "")
    assert "'../../etc/passwd', which is not allowed" in (results["evil"].error or "")
    slurpers[3].release.set()
    archive = Archive(cfg.rrd_dir, 60)
    ids = archive.metric_ids()
    assert "good/jobs.running" in ids and "good/jobs.idle" in ids
    assert not [i for i in ids if not i.startswith(("good/", "rexmon/"))]
    assert archive.last("rexmon/raise.errors")[1] == 1  # type: ignore[index]
    assert archive.last("rexmon/good.errors")[1] == 0  # type: ignore[index]
    assert not list(tmp_path.rglob("passwd*"))


def test_checkpoint_committed_only_after_archiving(write_config) -> None:
    cfg = load(write_config(""))
    s = ScriptedSlurper("cp", "checkpoint")
    Service(cfg, slurpers=[s]).run_once()
    assert json.loads((cfg.state_dir / "cp.json").read_text()) == {"n": 1}
    assert s.archived == [{"n": 1}]
    time.sleep(1.05)  # the next run must land in a later second to be archived
    s2 = ScriptedSlurper("cp", "checkpoint")
    Service(cfg, slurpers=[s2]).run_once()
    assert json.loads((cfg.state_dir / "cp.json").read_text()) == {"n": 2}


def test_damaged_checkpoint_starts_over_with_a_log_line(write_config, caplog) -> None:
    cfg = load(write_config(""))
    cfg.state_dir.mkdir(parents=True)
    (cfg.state_dir / "cp.json").write_text("{half a file")
    s = ScriptedSlurper("cp", "checkpoint")
    Service(cfg, slurpers=[s]).run_once()
    assert "checkpoint" in caplog.text and "unreadable" in caplog.text
    assert json.loads((cfg.state_dir / "cp.json").read_text()) == {"n": 1}


def test_daemon_keeps_good_slurpers_on_schedule_while_one_hangs(write_config) -> None:
    cfg = load(write_config("[scheduler]\nworkers = 4\njitter = 0\n"))
    good = ScriptedSlurper("good", "good", interval=1)
    hang = ScriptedSlurper("hang", "hang", interval=1)
    service = Service(cfg, slurpers=[good, hang], flush_interval=0.2)
    service.start()
    try:
        deadline = time.monotonic() + 20
        while good.runs < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        hang.release.set()
        service.stop()
    assert good.runs >= 4
    assert hang.runs == 1  # max_instances=1: the hung run was never stacked
    archive = Archive(cfg.rrd_dir, 60)
    assert archive.last("good/jobs.running")[1] == 5.0  # type: ignore[index]
    assert archive.exists("rexmon/scheduler.lag")
    # the skipped runs of the hung slurper were archived as errors
    assert archive.last("rexmon/hang.errors")[1] == 1  # type: ignore[index]
    assert service.lags and max(service.lags) < 5


def test_shards_partition_the_slurpers_deterministically(write_config) -> None:
    body = "".join(f'[[slurper]]\nid = "s{i}"\ntype = "munin"\nplugin = "/bin/true"\n' for i in range(30))
    cfg = load(write_config(body))
    parts = [{s.id for s in select_slurpers(cfg, f"{i}/3")} for i in (1, 2, 3)]
    assert set().union(*parts) == {f"s{i}" for i in range(30)}
    assert sum(len(p) for p in parts) == 30
    assert all(parts)
    assert shard_of("s7", 3) == shard_of("s7", 3)


def test_cli_slurp_dry_run_and_unknown_id(write_config, runner, tmp_path) -> None:
    plugin = tmp_path / "p"
    plugin.write_text('#!/bin/sh\n[ "$1" = config ] && { echo "x.label x"; exit 0; }\necho "x.value 3.5"\n')
    plugin.chmod(0o755)
    cfg = write_config(f'[[slurper]]\nid = "p"\ntype = "munin"\nplugin = "{plugin}"\n')
    result = runner.invoke(cli, ["--config", str(cfg), "slurp", "p", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("p/x\t3.5\t")
    assert not (tmp_path / "rrd" / "p").exists()
    result = runner.invoke(cli, ["--config", str(cfg), "slurp", "p"])
    assert result.exit_code == 0 and (tmp_path / "rrd" / "p" / "x.rrd").exists()
    result = runner.invoke(cli, ["--config", str(cfg), "slurp", "nope"])
    assert result.exit_code == 2
    assert "no slurper with id 'nope' (configured: p)" in result.output


@pytest.mark.parametrize("args", [["run", "--bogus"], ["metrics", "--json", "a", "b"], ["nosuchcommand"]])
def test_usage_errors_exit_2(runner, write_config, args: list[str]) -> None:
    result = runner.invoke(cli, ["--config", str(write_config("")), *args])
    assert result.exit_code == 2


def test_metrics_json_lists_id_value_time(write_config, runner) -> None:
    cfg_path = write_config("")
    cfg = load(cfg_path)
    Service(cfg, slurpers=[ScriptedSlurper("g", "good")]).run_once()
    rows = json.loads(runner.invoke(cli, ["--config", str(cfg_path), "metrics", "--json", "g/*"]).output)
    assert {r["id"] for r in rows} == {"g/jobs.running", "g/jobs.idle"}
    by_id = {r["id"]: r for r in rows}
    assert by_id["g/jobs.running"]["value"] == 5.0 and by_id["g/jobs.idle"]["value"] is None
    assert abs(by_id["g/jobs.running"]["time"] - time.time()) < 120
    assert Path(cfg.rrd_dir / "g" / "jobs.running.rrd").is_file()


def test_each_shard_has_its_own_lag_series() -> None:
    from rexmon.service import lag_metric

    assert lag_metric("") == "rexmon/scheduler.lag"
    assert lag_metric("2/3") == "rexmon/scheduler.shard2of3.lag"
    assert lag_metric("1/3") != lag_metric("2/3")


def test_a_failed_run_takes_none_of_the_max_metrics_budget(write_config) -> None:
    """Names of a run that failed (here: one name not allowed) are not counted against max_metrics."""
    from rexmon.runner import Runner

    class Batches(ScriptedSlurper):
        def collect(self, ctx: CollectContext) -> Sequence[Reading]:
            self.runs += 1
            if self.runs == 1:
                return [Reading("jobs.a", 1.0), Reading("jobs.b", 1.0), Reading("../evil", 1.0)]
            return [Reading("jobs.c", 1.0), Reading("jobs.d", 1.0)]

    cfg = load(write_config(""))
    slurper = Batches("b", "values")
    runner = Runner(cfg, [slurper], dry_run=True)
    runner.limits["b"] = (runner.limits["b"][0], 2)
    assert runner.run(slurper).error is not None
    second = runner.run(slurper)
    assert second.error is None and sorted(u.metric_id for u in second.updates) == ["b/jobs.c", "b/jobs.d"]

"""Configuration: merging conf.d, validation errors that name file and key, `rexmon check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from rexmon.cli import cli
from rexmon.config import ConfigError, load

PLUGIN = "/usr/share/munin/plugins/load"


def test_example_config_in_the_repo_is_valid(runner) -> None:
    repo = Path(__file__).resolve().parents[2]
    result = runner.invoke(cli, ["--config", str(repo / "etc" / "rexmon.toml"), "check"])
    assert result.exit_code == 0, result.output
    assert "ok (" in result.output


def test_confd_merged_in_name_order_last_wins(write_config, tmp_path) -> None:
    path = write_config(
        f'[[slurper]]\nid = "a"\ntype = "munin"\nplugin = "{PLUGIN}"\n',
        confd={
            "10-step.toml": "[archive]\nstep = 30\n",
            "20-step.toml": "[archive]\nstep = 10\n",
            "30-more.toml": f'[[slurper]]\nid = "b"\ntype = "munin"\ninterval = "5m"\nplugin = "{PLUGIN}"\n',
        },
    )
    cfg = load(path)
    assert cfg.archive.step == 10
    assert [s.id for s in cfg.slurpers] == ["a", "b"]
    assert cfg.slurpers[1].interval == 300
    assert cfg.slurpers[0].timeout == 10
    assert cfg.rrd_dir == tmp_path / "rrd"


def test_relative_paths_resolve_against_the_config_directory(tmp_path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "rexmon.toml").write_text(
        '[archive]\nrrd_dir = "../var/rrd"\nrrdcached = "unix:../run/c.sock"\n'
        '[database]\nurl = "sqlite:///../var/x.db"\n'
    )
    cfg = load(etc / "rexmon.toml")
    assert cfg.rrd_dir == etc / "../var/rrd"
    assert cfg.database_url == f"sqlite:///{etc / '../var/x.db'}"
    assert cfg.rrdcached == f"unix:{etc / '../run/c.sock'}"


def test_every_error_is_reported_with_file_and_key(write_config, runner) -> None:
    path = write_config(
        "[archive]\nstep = -5\nrrdcached = 'nonsense'\ncolour = 'red'\n"
        "[bogus]\nx = 1\n"
        f'[[slurper]]\nid = "a"\ntype = "munin"\nplugin = "{PLUGIN}"\nfrobnicate = 1\n'
        f'[[slurper]]\nid = "a"\ntype = "munin"\nplugin = "{PLUGIN}"\n'
        '[[slurper]]\nid = "c"\ntype = "nosuchtype"\n'
        '[[slurper]]\nid = "d"\ntype = "munin"\ninterval = "soon"\nplugin = 5\n'
        '[[alarm]]\nmatch = "a/*"\nwarning = "10:5"\nfor = "5 minutes"\n'
        "[[notify]]\nurl = { env = 'REXMON_TEST_UNSET_VARIABLE' }\n",
        confd={"50-bad.toml": "[web\n"},
    )
    result = runner.invoke(cli, ["--config", str(path), "check"])
    assert result.exit_code == 2
    out = result.output
    expected = [
        f"{path}: [archive] step: Input should be greater than 0",
        f"{path}: [archive] rrdcached: Value error, rrdcached must be",
        f"{path}: [archive] colour: unknown key",
        f"{path}: unknown section or key 'bogus'",
        f"{path}: [[slurper]] 'a': frobnicate: unknown key",
        f"{path}: [[slurper]] 'a': id: duplicate slurper id (first defined in {path})",
        "[[slurper]] 'c': type: unknown slurper type 'nosuchtype' (known: ",
        "[[slurper]] 'd': interval: not a duration: 'soon'",
        "[[slurper]] 'd': plugin: Input should be a valid string",
        "[[alarm]] #1: warning: Value error, '10:5': start 10 is greater than end 5",
        "[[alarm]] #1: for: Value error, not a duration: '5 minutes'",
        "[[notify]] #1: url: Value error, environment variable REXMON_TEST_UNSET_VARIABLE",
        "50-bad.toml: not valid TOML",
    ]
    for line in expected:
        assert line in out, line
    assert "munin" in out  # the known types are listed


def test_secret_by_reference_is_resolved_and_masked(write_config, monkeypatch) -> None:
    monkeypatch.setenv("REXMON_TEST_HOOK", "json://user:hunter2@127.0.0.1/")
    cfg = load(write_config("[[notify]]\nurl = { env = 'REXMON_TEST_HOOK' }\ntags = ['ops']\n"))
    secret = cfg.notify[0].url
    assert secret.get() == "json://user:hunter2@127.0.0.1/"
    assert "hunter2" not in repr(cfg.notify[0]) and "hunter2" not in str(secret)


def test_missing_config_file_is_a_usage_error(runner, tmp_path) -> None:
    result = runner.invoke(cli, ["--config", str(tmp_path / "nope.toml"), "run", "--once"])
    assert result.exit_code == 2
    assert "config file not found" in result.output


@pytest.mark.parametrize("shard", ["0/2", "3/2", "x", "1/0"])
def test_bad_shard_is_a_usage_error(write_config, runner, shard: str) -> None:
    result = runner.invoke(cli, ["--config", str(write_config("")), "run", "--once", "--shard", shard])
    assert result.exit_code == 2
    assert "must be I/N" in result.output


def test_reserved_slurper_id(write_config) -> None:
    with pytest.raises(ConfigError, match="reserved for rexmon's own health"):
        load(write_config(f'[[slurper]]\nid = "rexmon"\ntype = "munin"\nplugin = "{PLUGIN}"\n'))


SLURM_REST = """
[[slurper]]
id = "slurm-rest"
type = "slurm"
enabled = {enabled}
mode = "rest"
url = "http://127.0.0.1:9"
token = {{ env = "REXMON_TEST_UNSET_JWT" }}
"""


def test_a_disabled_slurpers_secret_may_be_missing(write_config, runner, monkeypatch) -> None:
    """A disabled slurper's unset variable is no config error; enabled, it is; run, it says why."""
    monkeypatch.delenv("REXMON_TEST_UNSET_JWT", raising=False)
    disabled = write_config(SLURM_REST.format(enabled="false"))
    check = runner.invoke(cli, ["--config", str(disabled), "check"])
    assert check.exit_code == 0, check.output
    slurp = runner.invoke(cli, ["--config", str(disabled), "slurp", "slurm-rest", "--dry-run"])
    assert slurp.exit_code == 1 and "REXMON_TEST_UNSET_JWT" in slurp.output and "is not set" in slurp.output
    enabled = write_config(SLURM_REST.format(enabled="true"))
    check = runner.invoke(cli, ["--config", str(enabled), "check"])
    assert check.exit_code == 2
    assert "'slurm-rest': token: " in check.output and "REXMON_TEST_UNSET_JWT" in check.output
    bad = write_config(
        SLURM_REST.format(enabled="false").replace('{ env = "REXMON_TEST_UNSET_JWT" }', "{ x = 1 }")
    )
    check = runner.invoke(cli, ["--config", str(bad), "check"])
    assert check.exit_code == 2 and "token: " in check.output  # a malformed reference is still an error

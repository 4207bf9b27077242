"""``rexmon archive check / migrate / prune`` on real RRD files (and through a real rrdcached)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from rexmon.cli import cli
from rrd.archive import Archive, SeriesSpec, Update
from tests.fixtures.rrdcached import RRDCached

PLUGIN = "/usr/share/munin/plugins/load"
NOW = int(time.time()) // 60 * 60
OLD = SeriesSpec("GAUGE", 120, None, None)  # as written at interval 60 with the default retention


def _config(write_config: Callable[..., Path], rrd: Path, extra: str = "", rrdcached: str = "") -> Path:
    cached = f'rrdcached = "{rrdcached}"\n' if rrdcached else ""
    return write_config(
        f'[archive]\nrrd_dir = "{rrd}"\nstep = 60\n{cached}{extra}\n'
        f'[[slurper]]\nid = "load"\ntype = "munin"\nplugin = "{PLUGIN}"\ninterval = "1m"\n'
    )


def _fill(rrd: Path, rrdcached: str = "") -> None:
    archive = Archive(rrd, 60, rrdcached)
    try:
        for i in range(120, 0, -1):  # two hours of a value a minute
            assert not archive.write([Update("load/load", NOW - 60 * i, float(i % 7) + 0.5, OLD)]).errors
        assert not archive.write([Update("gone/old", NOW - 100 * 86400, 1.0, OLD)]).errors
    finally:
        archive.close()


def _fetch(path: Path) -> list[str]:
    """``rrdtool fetch`` of the last two hours at one minute, as the command prints it."""
    out = subprocess.run(
        ["rrdtool", "fetch", str(path), "AVERAGE", "-r", "60", "-s", str(NOW - 7200), "-e", str(NOW - 60)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [line for line in out.splitlines() if ":" in line and "nan" not in line]


def test_check_lists_what_differs_and_what_is_stale(
    tmp_path: Path, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    rrd = tmp_path / "rrd"
    _fill(rrd)
    cfg = _config(write_config, rrd)
    same = runner.invoke(cli, ["--config", str(cfg), "archive", "check", "--stale-after", "200d"])
    assert same.exit_code == 0 and same.stdout == "", same.output  # interval 1m: the files match
    cfg = write_config(cfg.read_text().replace('interval = "1m"', 'interval = "5m"'))
    got = runner.invoke(cli, ["--config", str(cfg), "archive", "check"])
    assert got.exit_code == 1
    assert got.stdout.splitlines() == [
        "gone/old: not written for 100 days",
        "load/load: heartbeat 120 -> 600",
    ]


def test_migrate_to_a_new_retention_keeps_the_old_values(
    tmp_path: Path, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    rrd = tmp_path / "rrd"
    _fill(rrd)
    before = _fetch(rrd / "load" / "load.rrd")
    assert len(before) == 119
    cfg = _config(write_config, rrd, 'retention = "1m:1d, 10m:30d, 1d:1y"')
    check = runner.invoke(cli, ["--config", str(cfg), "archive", "check", "--stale-after", "365d"])
    old, new = "60s x 2880 300s x 4032 3600s x 1488 86400s x 730", "60s x 1440 600s x 4320 86400s x 365"
    assert check.exit_code == 1 and check.stdout == f"load/load: RRAs {old} -> {new}\n", check.stdout
    dry = runner.invoke(cli, ["--config", str(cfg), "archive", "migrate"])
    assert dry.exit_code == 0 and "1 file(s) would be rewritten" in dry.stderr, dry.output
    assert _fetch(rrd / "load" / "load.rrd") == before  # a dry run changes nothing
    done = runner.invoke(cli, ["--config", str(cfg), "archive", "migrate", "--yes"])
    assert done.exit_code == 0 and "1 file(s) rewritten, 0 failed" in done.stderr, done.output
    assert _fetch(rrd / "load" / "load.rrd") == before
    again = runner.invoke(cli, ["--config", str(cfg), "archive", "check", "--stale-after", "365d"])
    assert again.exit_code == 0, again.output
    assert not list(rrd.rglob(".*.migrate"))


def test_migrate_through_rrdcached_writes_pending_values_first(
    tmp_path: Path, write_config: Callable[..., Path], runner: CliRunner, rrdcached_unix: RRDCached
) -> None:
    rrd = rrdcached_unix.base_dir
    writer = Archive(rrd, 60, rrdcached_unix.address)
    try:
        for i in range(60, 0, -1):
            assert not writer.write([Update("load/load", NOW - 60 * i, float(i), OLD)]).errors
        cfg = _config(write_config, rrd, 'retention = "1m:1d, 1h:1y"', rrdcached_unix.address)
        done = runner.invoke(cli, ["--config", str(cfg), "archive", "migrate", "--yes"])
        assert done.exit_code == 0, done.output
        series = writer.fetch("load/load", NOW - 3600, NOW - 60)
        got = {t: v for t, v in series.points() if v is not None}
        assert got == pytest.approx({NOW - 60 * i: float(i) for i in range(1, 60)})
    finally:
        writer.close()


def test_prune_lists_and_removes_only_with_yes(
    tmp_path: Path, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    rrd = tmp_path / "rrd"
    _fill(rrd)
    cfg = _config(write_config, rrd)
    listed = runner.invoke(cli, ["--config", str(cfg), "archive", "prune", "--older-than", "90d"])
    assert listed.exit_code == 0 and listed.stdout.startswith("gone/old: last written "), listed.output
    assert (rrd / "gone" / "old.rrd").is_file()
    removed = runner.invoke(cli, ["--config", str(cfg), "archive", "prune", "--older-than", "90d", "--yes"])
    assert removed.exit_code == 0 and "1 file(s) removed" in removed.stderr
    assert not (rrd / "gone" / "old.rrd").exists() and (rrd / "load" / "load.rrd").is_file()
    bad = runner.invoke(cli, ["--config", str(cfg), "archive", "prune", "--older-than", "soon"])
    assert bad.exit_code == 2 and "'soon'" in bad.stderr


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        ('[archive]\nretention = "1m:2d, 5m"\n', "[archive] retention: Value error, tier 2 ('5m')"),
        ('[archive]\nstep = 300\nretention = "1m:2d"\n', "not a whole number of archive steps"),
    ],
)
def test_bad_retention_is_a_config_error(
    write_config: Callable[..., Path], runner: CliRunner, toml: str, error: str, tmp_path: Path
) -> None:
    cfg = write_config(f'{toml}rrd_dir = "{tmp_path / "rrd"}"\n')
    got = runner.invoke(cli, ["--config", str(cfg), "check"])
    assert got.exit_code == 2 and error in got.output, got.output


def test_a_slurpers_own_retention_is_checked_against_the_step(
    write_config: Callable[..., Path], runner: CliRunner
) -> None:
    cfg = write_config(
        f'[[slurper]]\nid = "load"\ntype = "munin"\nplugin = "{PLUGIN}"\nretention = "90s:1d"\n'
    )
    got = runner.invoke(cli, ["--config", str(cfg), "check"])
    assert got.exit_code == 2 and "[[slurper]] 'load': retention: resolution 90s" in got.output, got.output

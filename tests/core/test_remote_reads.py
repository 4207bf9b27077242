"""Reading the archive through rrdcached over TCP from a host without the RRD files (a collector)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from rexmon.cli import cli
from rrd.archive import Archive, ArchiveError, SeriesSpec, Update
from tests.fixtures.rrdcached import RRDCached

T0 = 1_700_000_000 // 60 * 60
GAUGE = SeriesSpec("GAUGE", 120, 0, None)


def _fill(archive: Archive, rounds: int = 30) -> None:
    for r in range(rounds):
        t = T0 + 60 * (r + 1)
        batch = [Update(f"s{i % 3}/g{i}", t, float(i * 10 + r) + 0.25, GAUGE) for i in range(9)]
        batch.append(Update("s0/unknown", t, None if r % 2 else 1.0, GAUGE))
        assert not archive.write(batch).errors


def test_a_host_without_the_files_reads_what_the_archive_host_reads(
    tmp_path: Path, rrdcached_tcp: RRDCached
) -> None:
    local = Archive(tmp_path / "rrd", 60, rrdcached_tcp.address)  # the archive host: -b is rrd_dir
    collector = Archive(tmp_path / "not-here", 60, rrdcached_tcp.address)
    try:
        _fill(collector)  # the collector writes; its updates are still pending in rrdcached
        assert collector.reads_remote and not local.reads_remote
        ids = local.metric_ids()
        assert len(ids) == 10 and collector.metric_ids() == ids
        assert collector.last_many(ids) == local.last_many(ids)
        assert collector.last("s0/unknown") == (T0 + 60 * 30, None)
        assert collector.last("s1/g1") == (T0 + 60 * 30, 10.0 + 29 + 0.25)
        for cf in ("AVERAGE", "MIN", "MAX"):
            theirs = collector.fetch("s2/g5", T0, T0 + 60 * 30, cf)
            ours = local.fetch("s2/g5", T0, T0 + 60 * 30, cf)
            assert theirs == ours and any(v is not None for v in ours.values)
        info = collector.info("s1/g4")
        assert info["ds[value].type"] == "GAUGE" and info["step"] == 60
        assert info["last_update"] == local.info("s1/g4")["last_update"]
        assert collector.last("s9/none") is None and not collector.exists("s9/none")
        assert collector.exists("s1/g4")
        with pytest.raises(ArchiveError, match="no such metric: s9/none"):
            collector.fetch("s9/none", T0, T0 + 600)
    finally:
        collector.close()
        local.close()


def test_files_rexmon_did_not_name_are_not_listed(tmp_path: Path, rrdcached_tcp: RRDCached) -> None:
    collector = Archive(tmp_path / "not-here", 60, rrdcached_tcp.address)
    try:
        _fill(collector, rounds=1)
        (tmp_path / "rrd" / "deep" / "er").mkdir(parents=True)
        for name in ("deep/er/x.rrd", "top.rrd", "s0/notes.txt", "s0/.hidden.rrd"):
            (tmp_path / "rrd" / name).write_bytes(b"")
        assert collector.metric_ids() == sorted([f"s{i % 3}/g{i}" for i in range(9)] + ["s0/unknown"])
    finally:
        collector.close()


def test_rrdcached_gone_is_an_error_naming_it(
    tmp_path: Path, rrdcached_tcp: RRDCached, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    collector = Archive(tmp_path / "not-here", 60, rrdcached_tcp.address)
    rrdcached_tcp.stop()
    with pytest.raises(ArchiveError, match=rf"rrdcached at {rrdcached_tcp.address}"):
        collector.metric_ids()
    with pytest.raises(ArchiveError, match=r"s0/g0: .*rrdcached"):
        collector.last("s0/g0")
    config = write_config(
        f'[archive]\nrrd_dir = "{tmp_path / "not-here"}"\nrrdcached = "{rrdcached_tcp.address}"\n'
    )
    listed = runner.invoke(cli, ["--config", str(config), "metrics"])
    assert listed.exit_code == 1 and f"rrdcached at {rrdcached_tcp.address}" in listed.output, listed.output


def test_rexmon_metrics_on_a_collector_host(
    tmp_path: Path, rrdcached_tcp: RRDCached, write_config: Callable[..., Path], runner: CliRunner
) -> None:
    archive = Archive(tmp_path / "rrd", 60, rrdcached_tcp.address)
    _fill(archive, rounds=3)
    archive.close()
    config = write_config(
        f'[archive]\nrrd_dir = "{tmp_path / "not-here"}"\nrrdcached = "{rrdcached_tcp.address}"\n'
    )
    listed = runner.invoke(cli, ["--config", str(config), "metrics", "--json", "s1/*"])
    assert listed.exit_code == 0, listed.output
    rows = {row["id"]: row["value"] for row in json.loads(listed.stdout)}
    assert rows == {"s1/g1": 12.25, "s1/g4": 42.25, "s1/g7": 72.25}

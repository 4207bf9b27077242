"""The archive with real rrdtool, directly and through a real rrdcached (unix socket and TCP)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import rrdtool

import rrd.writer as writer_mod
from rrd.archive import Archive, ArchiveWriter, SeriesSpec, Update, rra_args
from rrd.names import MetricIdError, Names, check_id, make_id, path_for
from tests.fixtures.rrdcached import start_rrdcached

T0 = 1_700_000_000 // 60 * 60
GAUGE = SeriesSpec("GAUGE", 120, 0, None)
COUNTER = SeriesSpec("COUNTER", 120, 0, None)
DERIVE = SeriesSpec("DERIVE", 120, 0, None)


def workload() -> list[list[Update]]:
    """Three rounds of a mixed batch: gauges, counters, unknowns, a back-dated and a duplicate update."""
    rounds = []
    for r in range(3):
        t = T0 + 60 * (r + 1)
        batch = [Update(f"s{i % 3}/g{i}", t, float(i * 10 + r) + 0.25, GAUGE) for i in range(20)]
        batch.append(Update("counters/bytes", t, 1_000_000 + r * 60_000, COUNTER))
        batch.append(Update("counters/jobs", t, 500 - r * 10, DERIVE))
        batch.append(Update("s0/unknown", t, None, GAUGE))
        if r == 2:
            batch.append(Update("s0/g0", t - 120, 99.0, GAUGE))  # older than the file: skipped
            batch.append(Update("s1/g1", t, 5.0, GAUGE))  # same second twice: second one skipped
        rounds.append(batch)
    return rounds


def dump(path: Path) -> str:
    return subprocess.run(["rrdtool", "dump", str(path)], check=True, capture_output=True, text=True).stdout


def run_workload(archive: Archive) -> tuple[int, int]:
    written = skipped = 0
    for batch in workload():
        res = archive.write(batch)
        assert res.errors == []
        written += res.written
        skipped += res.skipped_old
    archive.flush()
    archive.close()
    return written, skipped


@pytest.mark.parametrize(
    ("tcp", "chunk"),
    [(False, 1024), (True, 1024), (False, 4), (True, 3)],
    ids=["unix", "tcp", "unix-parts", "tcp-parts"],
)
def test_rrdcached_archive_identical_to_direct(
    tmp_path: Path, tcp: bool, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "-parts": the BATCH streamed in parts of 3 or 4 lines, with files first seen in later parts."""
    monkeypatch.setattr(writer_mod, "CHUNK", chunk)
    direct = Archive(tmp_path / "direct", 60)
    counts_direct = run_workload(direct)
    daemon = start_rrdcached(tmp_path / "cached", tmp_path / "daemon", tcp=tcp)
    try:
        cached = Archive(tmp_path / "cached", 60, daemon.address)
        counts_cached = run_workload(cached)
    finally:
        daemon.stop()
    assert counts_direct == counts_cached == (3 * 23, 2)
    files = sorted(p.relative_to(tmp_path / "direct") for p in (tmp_path / "direct").rglob("*.rrd"))
    assert len(files) == 23
    for rel in files:
        assert dump(tmp_path / "direct" / rel) == dump(tmp_path / "cached" / rel), rel


def test_rrdcached_reads_flush_pending_updates(tmp_path: Path, rrdcached_unix) -> None:
    archive = Archive(rrdcached_unix.base_dir, 60, rrdcached_unix.address)
    archive.write([Update("a/x", T0 + 60, 1.0, GAUGE), Update("a/x", T0 + 120, 2.0, GAUGE)])
    # rrdcached holds the update (-w 3600) until a read flushes it
    assert rrdtool.lastupdate(str(archive.path("a/x")))["ds"]["value"] is None
    assert archive.last("a/x") == (T0 + 120, 2.0)
    archive.close()


def test_file_layout_and_rras(tmp_path: Path) -> None:
    archive = Archive(tmp_path, 60)
    archive.write([Update("condor/schedd.s1.running", T0, 3, SeriesSpec("GAUGE", 600, 0, 1e6))])
    path = tmp_path / "condor" / "schedd.s1.running.rrd"
    info = rrdtool.info(str(path))
    assert info["step"] == 60
    assert info["ds[value].minimal_heartbeat"] == 600
    assert info["ds[value].max"] == 1e6
    rras = {(info[f"rra[{i}].cf"], info[f"rra[{i}].pdp_per_row"], info[f"rra[{i}].rows"]) for i in range(12)}
    assert ("AVERAGE", 1, 2880) in rras and ("MAX", 1440, 730) in rras and ("MIN", 5, 4032) in rras
    assert len(rra_args(60)) == 12


def test_restart_skips_updates_older_than_the_file(tmp_path: Path) -> None:
    Archive(tmp_path, 60).write([Update("a/x", T0 + 60, 1.0, GAUGE)])
    fresh = Archive(tmp_path, 60)  # a new process: no cached last-update times
    res = fresh.write([Update("a/x", T0, 5.0, GAUGE), Update("a/x", T0 + 120, 2.0, GAUGE)])
    assert (res.written, res.skipped_old, res.errors) == (1, 1, [])
    assert fresh.last("a/x") == (T0 + 120, 2.0)


def test_corrupt_file_fails_alone(tmp_path: Path) -> None:
    bad = tmp_path / "a" / "broken.rrd"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not an rrd file")
    res = Archive(tmp_path, 60).write([Update("a/broken", T0, 1.0, GAUGE), Update("a/fine", T0, 2.0, GAUGE)])
    assert res.written == 1
    assert [m for m, _ in res.errors] == ["a/broken"]
    assert "not a readable RRD file" in res.errors[0][1]
    assert bad.read_bytes() == b"not an rrd file"


@pytest.mark.parametrize(
    ("slurper", "metric", "expected"),
    [
        ("x", "../../etc/passwd", "x/_._etc_passwd"),
        ("..", "passwd", "_/passwd"),
        ("s", "a b/c:d", "s/a_b_c_d"),
        ("s", ".hidden", "s/hidden"),
    ],
)
def test_names_cannot_escape_rrd_dir(tmp_path: Path, slurper: str, metric: str, expected: str) -> None:
    mid = make_id(slurper, metric)
    assert mid == expected
    assert tmp_path.resolve() in path_for(tmp_path, mid).parents


def test_names_resolve_as_path_for_does_with_links(tmp_path: Path) -> None:
    """Names resolves each slurper's folder once (speed); links to the archive, to a folder inside it
    and to a file still give path_for's real paths, and a folder linked out of the archive is refused."""
    real = tmp_path / "real"
    (real / "s").mkdir(parents=True)
    (real / "elsewhere").mkdir()
    (real / "s" / "target.rrd").write_bytes(b"")
    (real / "s" / "linked.rrd").symlink_to(real / "s" / "target.rrd")
    (real / "alias").symlink_to(real / "elsewhere")
    (tmp_path / "outside").mkdir()
    (real / "escape").symlink_to(tmp_path / "outside")
    archive = tmp_path / "archive"
    archive.symlink_to(real)
    names = Names(archive, remote=False)
    for mid in ("s/plain", "s/linked", "alias/m", "new/m"):
        assert names.path(mid) == path_for(archive, mid), mid
        assert names.name(mid) == str(path_for(archive, mid))
    assert names.path("s/linked") == real / "s" / "target.rrd"
    with pytest.raises(MetricIdError, match="would leave the archive"):
        names.path("escape/m")
    with pytest.raises(MetricIdError, match="would leave the archive"):
        path_for(archive, "escape/m")


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/../../b", "a", "a/b/c", "/abs/x", "a/.x", "a/b\n"])
def test_ids_from_outside_are_validated_not_rewritten(bad: str) -> None:
    with pytest.raises(MetricIdError, match="is not a metric id"):
        check_id(bad)


def _values(archive: Archive, metric: str, t0: int, t1: int) -> dict[int, float | None]:
    series = archive.fetch(metric, t0, t1, resolution=1)
    return {t: v for t, v in series.points() if t0 < t <= t1}


def test_acknowledged_updates_survive_kill_9_of_rrdcached_while_rexmon_runs(tmp_path: Path) -> None:
    """rrdcached loses its buffered journal tail on kill -9; rexmon's journal replays it on reconnect."""
    daemon = start_rrdcached(tmp_path / "rrd", tmp_path / "daemon", tcp=False)
    archive = Archive(tmp_path / "rrd", 1, daemon.address)
    spec = SeriesSpec("GAUGE", 2, None, None)
    first = (int(time.time()) - 86400) // 60 * 60
    try:
        for t in range(first + 1, first + 601):
            assert archive.write([Update("acked/ledger", t, float(t % 1000), spec)]).written == 1
        daemon.stop(kill=True)
        daemon = start_rrdcached(tmp_path / "rrd", tmp_path / "daemon", tcp=False)
        res = archive.write([Update("acked/ledger", first + 601, 1.0, spec)])
        assert (res.written, res.errors) == (1, [])
        assert (
            archive.writer.client is not None and archive.writer.client.replayed > 0
        )  # something was really lost
        got = _values(archive, "acked/ledger", first, first + 600)
        assert got == {t: float(t % 1000) for t in range(first + 1, first + 601)}
    finally:
        archive.close()
        daemon.stop()
    assert list((tmp_path / "rrd" / ".journal").glob("*.wal")) == []  # a clean close empties it


def test_journal_of_a_killed_writer_is_replayed_by_the_next(tmp_path: Path) -> None:
    daemon = start_rrdcached(tmp_path / "rrd", tmp_path / "daemon", tcp=False)
    first = (int(time.time()) - 86400) // 60 * 60
    script = (
        "import os, sys\n"
        "from rrd.archive import Archive, SeriesSpec, Update\n"
        f"a = Archive(__import__('pathlib').Path({str(tmp_path / 'rrd')!r}), 1, {daemon.address!r})\n"
        "s = SeriesSpec('GAUGE', 2, None, None)\n"
        f"for t in range({first + 1}, {first + 601}):\n"
        "    a.write([Update('acked/ledger', t, float(t % 1000), s)])\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    assert proc.returncode == -9
    daemon.stop(kill=True)
    daemon = start_rrdcached(tmp_path / "rrd", tmp_path / "daemon", tcp=False)
    archive = Archive(tmp_path / "rrd", 1, daemon.address)
    try:
        archive.write([Update("acked/other", first + 1, 1.0, SeriesSpec("GAUGE", 2))])
        got = _values(archive, "acked/ledger", first, first + 600)
        assert got == {t: float(t % 1000) for t in range(first + 1, first + 601)}
        assert archive.sync()  # the orphan is removed once its values are read back from the file
        assert [p.name for p in (tmp_path / "rrd" / ".journal").glob("*.wal")] == [
            archive.writer.journal.path.name
        ]  # type: ignore[union-attr]
    finally:
        archive.close()
        daemon.stop()


def test_readers_never_create_a_journal(tmp_path: Path, rrdcached_unix) -> None:
    Archive(rrdcached_unix.base_dir, 60).write([Update("a/x", T0, 1.0, GAUGE)])
    reader = Archive(rrdcached_unix.base_dir, 60, rrdcached_unix.address)
    assert reader.last("a/x") == (T0, 1.0)
    assert reader.metric_ids() == ["a/x"]
    reader.close()
    assert not (rrdcached_unix.base_dir / ".journal").exists()


def test_errors_of_a_streamed_batch_name_the_right_metric(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rrdcached numbers a failed line within the whole BATCH, across the parts it was sent in."""
    monkeypatch.setattr(writer_mod, "CHUNK", 4)
    daemon = start_rrdcached(tmp_path / "rrd", tmp_path / "daemon", tcp=False)
    archive = Archive(tmp_path / "rrd", 60, daemon.address)
    ids = [f"s/m{i:02d}" for i in range(14)]
    try:
        assert archive.write([Update(m, T0 + 60, 1.0, GAUGE) for m in ids]).written == 14
        daemon.stop()  # a clean stop writes every file; the new daemon knows none of them
        archive.path("s/m10").unlink()  # behind rexmon's back: in the third part of the next batch
        daemon = start_rrdcached(tmp_path / "rrd", tmp_path / "daemon", tcp=False)
        res = archive.write([Update(m, T0 + 120, 2.0, GAUGE) for m in ids])
        assert res.written == 13
        assert [mid for mid, _ in res.errors] == ["s/m10"]
        assert "No such file" in res.errors[0][1], res.errors
        assert archive.last("s/m11") == (T0 + 120, 2.0)
        assert archive.last("s/m09") == (T0 + 120, 2.0)
    finally:
        archive.close()
        daemon.stop()


def test_streamed_batch_survives_rrdcached_restarting_between_its_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection breaks after part one was applied: the whole batch goes again on a new one."""
    monkeypatch.setattr(writer_mod, "CHUNK", 5)
    daemon = start_rrdcached(tmp_path / "rrd", tmp_path / "daemon", tcp=False)
    archive = Archive(tmp_path / "rrd", 60, daemon.address)
    ids = [f"s/m{i}" for i in range(10)]
    batch = [Update(m, T0 + 120, float(i), GAUGE) for i, m in enumerate(ids)]
    restarted = []

    def restart_after_first_part(updates, result, failed):  # type: ignore[no-untyped-def]
        if restarted == [] and updates[0].time == T0 + 120 and updates[0].metric_id == "s/m5":
            nonlocal daemon
            daemon.stop(kill=True)
            daemon = start_rrdcached(tmp_path / "rrd", tmp_path / "daemon", tcp=False)
            restarted.append(True)
        return ArchiveWriter._format(archive.writer, updates, result, failed)

    try:
        assert archive.write([Update(m, T0 + 60, 0.5, GAUGE) for m in ids]).written == 10
        monkeypatch.setattr(archive.writer, "_format", restart_after_first_part)
        res = archive.write(batch)
        assert restarted == [True]
        client = archive.writer.client
        assert client is not None and client.connections == 2  # the batch went again
        assert res.errors == []
        # part one reached the killed daemon or came back through the replay: never both, never lost
        assert res.written + res.skipped_old == 10
        assert {m: archive.last(m) for m in ids} == {m: (T0 + 120, float(i)) for i, m in enumerate(ids)}
    finally:
        archive.close()
        daemon.stop()

"""The archive's disk and its readers: nothing acknowledged by rrdcached is lost when its writes fail."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rrd.archive import Archive, SeriesSpec, Update
from tests.fixtures.rrdcached import RRDCached, start_rrdcached

STEP = 60
T0 = 1_700_000_000 // STEP * STEP
GAUGE = SeriesSpec("GAUGE", 2 * STEP, None, None)


def _mount(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")


def _remount(path: Path, options: str) -> None:
    """Remount (retried: a remount read-only fails while rrdcached has a file open for writing)."""
    for _ in range(50):
        if (
            subprocess.run(["mount", "-o", f"remount,{options}", str(path)], capture_output=True).returncode
            == 0
        ):
            return
        time.sleep(0.1)
    raise AssertionError(f"cannot remount {path} {options}")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[list[Path]]:
    """Mount points the test makes; unmounted after it."""
    mounts: list[Path] = []
    yield mounts
    for m in reversed(mounts):
        subprocess.run(["umount", "-l", str(m)], check=False)


def _values(archive: Archive, mid: str, start: int, end: int) -> dict[int, float]:
    series = archive.fetch(mid, start, end)
    return {t: v for t, v in series.points() if v is not None}


#: a reader in another process holding the lock librrd's readers take (fcntl F_RDLCK over the whole
#: file, as rrdtool fetch does) until its stdin closes; fcntl locks belong to a process, so the holder
#: must not be the test process (any close of the file there would release it)
READER = (
    "import fcntl, os, struct, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
    "fcntl.fcntl(fd, fcntl.F_SETLKW, struct.pack('hhqqi', fcntl.F_RDLCK, 0, 0, 0, 0))\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()\n"
)


@contextlib.contextmanager
def _reader_holding(path: Path) -> Iterator[None]:
    proc = subprocess.Popen(
        [sys.executable, "-c", READER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"locked\n"
        yield
    finally:
        proc.communicate(timeout=10)


def test_reader_holding_a_file_while_rrdcached_flushes_it(tmp_path: Path) -> None:
    """A reader holds an RRD file (librrd's read lock) while a sync flushes it, so rrdcached's write fails and it drops the values yet answers success: the values stay in rexmon's journal, are sent again and are all in the file once the reader lets go."""  # noqa: E501
    daemon = start_rrdcached(tmp_path / "rrd", tmp_path / "daemon", tcp=False)
    archive = Archive(tmp_path / "rrd", STEP, daemon.address, journal_dir=tmp_path / "journal")
    try:
        assert not archive.write([Update("s/x", T0 + STEP, 0.5, GAUGE)]).errors
        assert archive.sync()
        for i in range(2, 12):
            assert not archive.write([Update("s/x", T0 + i * STEP, float(i), GAUGE)]).errors
        with _reader_holding(archive.path("s/x")):
            during = archive.sync()
        after = archive.sync()
        got = _values(archive, "s/x", T0, T0 + 11 * STEP)
        assert got == {T0 + STEP: 0.5, **{T0 + i * STEP: float(i) for i in range(2, 12)}}
        assert (during, after) == (False, True)  # rrdcached said success; the file said otherwise
        assert not list((tmp_path / "journal").glob("*-*-*.wal"))  # checked segments are removed
    finally:
        archive.close()
        daemon.stop()


def test_rrd_dir_read_only_for_40_seconds(
    tmp_path: Path, tmpfs: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    """rrd_dir read-only for 40 s under rrdcached, one value a second (and a metric first seen during it): one error line per minute naming the directory, all 40 values and the new file there once it is writable again."""  # noqa: E501
    rrd = tmp_path / "rrd"
    _mount(rrd, "size=64m")
    tmpfs.append(rrd)
    daemon = start_rrdcached(rrd, tmp_path / "daemon", tcp=False)
    archive = Archive(rrd, STEP, daemon.address, journal_dir=tmp_path / "journal")
    try:
        assert not archive.write([Update("s/x", T0, 0.0, GAUGE)]).errors
        assert archive.sync()
        _remount(rrd, "ro")
        synced = []
        with caplog.at_level(logging.ERROR, logger="rrd"):
            for i in range(1, 41):
                batch = [Update("s/x", T0 + i * STEP, float(i), GAUGE)]
                if i >= 20:
                    batch.append(Update("s/new", T0 + i * STEP, float(-i), GAUGE))
                archive.write(batch)
                if i % 5 == 0:
                    synced.append(archive.sync())
                time.sleep(1)
        _remount(rrd, "rw")
        archive.write([Update("s/x", T0 + 41 * STEP, 41.0, GAUGE)])  # the held new metric goes first
        assert archive.sync()
        assert _values(archive, "s/x", T0, T0 + 41 * STEP) == {T0 + i * STEP: float(i) for i in range(1, 42)}
        new = {T0 + i * STEP: float(-i) for i in range(20, 41)}
        assert _values(archive, "s/new", T0, T0 + 40 * STEP) == new
        assert synced == [False] * 8  # each sync during the outage said the journal is still needed
        outage = [r.getMessage() for r in caplog.records if r.name.startswith("rrd")]
        assert 1 <= len(outage) <= 3, outage  # one per kind (flush, create) per minute, not per value
        assert all(str(rrd) in m for m in outage), outage
    finally:
        archive.close()
        daemon.stop()


@pytest.mark.parametrize("trouble", ["read-only", "full"])
def test_journal_directory_unwritable(tmp_path: Path, tmpfs: list[Path], trouble: str) -> None:
    """rexmon's journal directory read-only or full: the values wait in memory (counted as held), one error line, and all reach the files when the directory can be written again."""  # noqa: E501
    journal = tmp_path / "journal"
    _mount(journal, "size=256k,ro" if trouble == "read-only" else "size=256k")
    tmpfs.append(journal)
    filler = journal / "filler"
    if trouble == "full":
        with filler.open("wb") as fh, pytest.raises(OSError):
            fh.write(b"\0" * (1 << 20))
    daemon = start_rrdcached(tmp_path / "rrd", tmp_path / "daemon", tcp=False)
    archive = Archive(tmp_path / "rrd", STEP, daemon.address, journal_dir=journal)
    try:
        held = [archive.write([Update("s/x", T0 + i * STEP, float(i), GAUGE)]).held for i in range(1, 11)]
        assert held == list(range(1, 11))
        if trouble == "full":
            filler.unlink()
        else:
            _remount(journal, "rw")
        result = archive.write([Update("s/x", T0 + 11 * STEP, 11.0, GAUGE)])
        assert result.held == 0 and not result.errors
        assert archive.sync()
        assert _values(archive, "s/x", T0, T0 + 11 * STEP) == {T0 + i * STEP: float(i) for i in range(1, 12)}
    finally:
        archive.close()
        daemon.stop()


def test_held_values_beyond_the_bound_are_refused_and_counted(tmp_path: Path, tmpfs: list[Path]) -> None:
    """Journal unwritable longer than memory allows: values past the bound are refused with a count (never silently), the ones held are written when it comes back."""  # noqa: E501
    journal = tmp_path / "journal"
    _mount(journal, "size=256k,ro")
    tmpfs.append(journal)
    daemon = start_rrdcached(tmp_path / "rrd", tmp_path / "daemon", tcp=False)
    archive = Archive(tmp_path / "rrd", STEP, daemon.address, journal_dir=journal)
    archive.writer.backlog.limit = 5
    try:
        results = [archive.write([Update("s/x", T0 + i * STEP, float(i), GAUGE)]) for i in range(1, 9)]
        assert [r.refused for r in results] == [0] * 5 + [1, 1, 1]
        assert archive.writer.refused_total == 3 and len(archive.writer.held) == 5
        _remount(journal, "rw")
        assert not archive.write([]).errors
        assert archive.sync()
        assert _values(archive, "s/x", T0, T0 + 8 * STEP) == {T0 + i * STEP: float(i) for i in range(1, 6)}
    finally:
        archive.close()
        daemon.stop()


def test_stress_reads_and_graphs_while_rrdcached_flushes(tmp_path: Path) -> None:
    """Stress: 200 metrics written 20 times a second while other threads fetch them, read their last values, draw graphs of them with rrdtool and syncs flush them: every value sent is in the files."""  # noqa: E501
    from rrd.graph import GraphRenderer
    from rrd.graphargs import GraphSpec

    daemon: RRDCached = start_rrdcached(tmp_path / "rrd", tmp_path / "daemon", tcp=False)
    archive = Archive(tmp_path / "rrd", STEP, daemon.address, journal_dir=tmp_path / "journal")
    web = Archive(tmp_path / "rrd", STEP, daemon.address, flush_errors="warn")
    ids = [f"s{i % 4}/m{i}" for i in range(200)]
    stop = threading.Event()
    failures: list[BaseException] = []
    rounds = 300

    def read(kind: int) -> None:
        renderer = GraphRenderer(web)
        n = 0
        while not stop.is_set():
            mid = ids[n % len(ids)]
            n += 1
            try:
                if kind == 0:
                    web.fetch(mid, T0, T0 + rounds * STEP)
                elif kind == 1:
                    web.last(mid)
                else:
                    renderer.render(GraphSpec((mid,), T0, T0 + rounds * STEP), use_cache=False)
            except Exception as exc:  # a read of a file not created yet is fine; note anything else
                if "no such metric" not in str(exc):
                    failures.append(exc)

    def sync() -> None:
        while not stop.is_set():
            archive.sync()
            time.sleep(0.2)

    threads = [threading.Thread(target=read, args=(k,)) for k in (0, 1, 2)] + [threading.Thread(target=sync)]
    try:
        for t in threads:
            t.start()
        for r in range(1, rounds + 1):
            assert not archive.write(
                [Update(m, T0 + r * STEP, float(r * 1000 + j), GAUGE) for j, m in enumerate(ids)]
            ).errors
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(30)
        assert archive.sync()
        assert not failures, failures[:3]
        for j, mid in enumerate(ids):
            got = _values(archive, mid, T0, T0 + rounds * STEP)
            assert got == {T0 + r * STEP: float(r * 1000 + j) for r in range(1, rounds + 1)}, mid
    finally:
        stop.set()
        archive.close()
        web.close()
        daemon.stop()

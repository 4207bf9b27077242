"""Crash and restart: kill -9 of ``rexmon run`` and of rrdcached, then checks of what the archive holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rrd.archive import Archive, SeriesSpec, Update
from tests.fixtures.rrdcached import RRDCached
from tests.reliability.helpers import (
    EPOCH_PLUGIN,
    Collector,
    LedgerWriter,
    checkpoint,
    munin_plugin,
    rrdtool_ok,
    wait_for,
)
from tests.reliability.ledger import value_at

LEDGER = "books"
#: archive step, ledger spacing and heartbeat alike (small files: rrdtool dump stays quick)
STEP = 60
#: one 4 KiB stdio buffer of rrdcached's journal holds fewer update lines than this


def _config(tmp_path: Path, write_config: Callable[..., Path], address: str) -> Path:
    epoch = munin_plugin(tmp_path / "plugins.d", "epochs", EPOCH_PLUGIN)
    (tmp_path / "epochs.value").write_text("7\n", encoding="utf-8")
    return write_config(
        f"""
        [archive]
        rrd_dir = "{tmp_path / "rrd"}"
        step = 60
        rrdcached = "{address}"

        [scheduler]
        state_dir = "{tmp_path / "state"}"
        jitter = 0
        workers = 4

        [[slurper]]
        id = "{LEDGER}"
        type = "ledger"
        interval = 1
        source = "{tmp_path / "ledger.txt"}"

        [[slurper]]
        id = "load"
        type = "munin"
        interval = 2
        plugin = "/usr/share/munin/plugins/load"

        [[slurper]]
        id = "memory"
        type = "munin"
        interval = 2
        plugin = "/usr/share/munin/plugins/memory"

        [[slurper]]
        id = "epochs"
        type = "munin"
        interval = 1
        plugin = "{epoch}"
        env = {{ SOURCE = "{tmp_path / "epochs.value"}" }}
        """
    )


def _ledger_gaps(archive: Archive, first: int, last: int) -> list[int]:
    """Epochs in (first, last] whose archived value is not the ledger's value (missing or wrong)."""
    series = archive.fetch(f"{LEDGER}/ledger", first, last)
    # rrdtool labels a row by the end of its interval: row i is start + (i + 1) * step
    got = {series.start + (i + 1) * series.step: v for i, v in enumerate(series.values)}
    return [t for t in range(first + STEP, last + 1, STEP) if got.get(t) != value_at(t)]


def _assert_archive_sound(rrd_dir: Path, daemon: str) -> None:
    files = sorted(rrd_dir.rglob("*.rrd"))
    assert len(files) >= 6, files
    bad = {str(f): why for f in files for ok, why in [rrdtool_ok(f, daemon)] if not ok}
    assert not bad, bad
    assert not list(rrd_dir.rglob("*.tmp")), "temporary files left in the archive"


def test_kill_9_of_rexmon_run_loses_nothing_and_resumes_checkpoints(
    tmp_path: Path,
    write_config: Callable[..., Path],
    plugins: Path,
    rrdcached: Callable[[], RRDCached],
    collectors: list[Collector],
) -> None:
    """kill -9 of `rexmon run` (twice, mid-ingestion, real Munin plugins + a checkpointing slurper): every archived value is kept, checkpoints resume without gaps or duplicates, no file corrupt."""  # noqa: E501
    daemon = rrdcached()
    cfg = _config(tmp_path, write_config, daemon.address)
    first = (int(time.time()) - 3 * 86400) // STEP * STEP
    writer = LedgerWriter(tmp_path / "ledger.txt", first).start()
    state = tmp_path / "state"
    collector = Collector(cfg, plugins, tmp_path / "rexmon.log")
    collectors.append(collector)
    for _ in range(2):
        collector.start()
        before = checkpoint(state, LEDGER)
        wait_for(
            lambda b=before: checkpoint(state, LEDGER) > b + 30 * STEP, 60, "the ledger checkpoint to advance"
        )
        collector.kill9()
    collector.start()
    last = writer.stop()
    wait_for(lambda: checkpoint(state, LEDGER) >= last, 120, "the restarted collector to catch up")
    munin = [tmp_path / "rrd" / s for s in ("load", "memory", "epochs")]
    wait_for(lambda: all(any(d.glob("*.rrd")) for d in munin), 60, "every Munin slurper's files")
    time.sleep(2.5)  # one more round of the 2 s plugins, so each has a value behind its file
    assert collector.stop() == 0
    archive = Archive(tmp_path / "rrd", STEP, daemon.address)
    try:
        assert _ledger_gaps(archive, first, last) == []
        assert archive.last("epochs/x") is not None and archive.last("load/load") is not None
    finally:
        archive.close()
    _assert_archive_sound(tmp_path / "rrd", daemon.address)
    assert "Traceback" not in collector.output()


def test_kill_9_of_rrdcached_during_ingestion(
    tmp_path: Path,
    write_config: Callable[..., Path],
    plugins: Path,
    rrdcached: Callable[[], RRDCached],
    collectors: list[Collector],
) -> None:
    """kill -9 of rrdcached while `rexmon run` ingests: clear log line while it is down, reconnect after its restart (journal replayed), no corrupt file, no gap after the restart."""  # noqa: E501
    daemon = rrdcached()
    cfg = _config(tmp_path, write_config, daemon.address)
    first = (int(time.time()) - 3 * 86400) // STEP * STEP
    writer = LedgerWriter(tmp_path / "ledger.txt", first).start()
    state = tmp_path / "state"
    collector = Collector(cfg, plugins, tmp_path / "rexmon.log")
    collectors.append(collector)
    collector.start()
    wait_for(lambda: checkpoint(state, LEDGER) > first + 60 * STEP, 60, "the ledger checkpoint to advance")
    daemon.stop(kill=True)
    killed_at = checkpoint(state, LEDGER)
    wait_for(lambda: "cannot connect to rrdcached" in collector.output(), 30, "a log line naming rrdcached")
    daemon = rrdcached()
    last = writer.stop()
    wait_for(lambda: checkpoint(state, LEDGER) >= last, 120, "the collector to catch up")
    assert collector.stop() == 0
    archive = Archive(tmp_path / "rrd", STEP, daemon.address)
    try:
        gaps = _ledger_gaps(archive, first, last)
    finally:
        archive.close()
    # rrdcached loses the tail still in its journal's stdio buffer (rrdtool-1.x#1137); rexmon's own
    # update journal (rrd/journal.py) replays it on reconnect, so nothing is missing
    assert gaps == [], (killed_at, gaps)
    _assert_archive_sound(tmp_path / "rrd", daemon.address)


def test_values_acknowledged_by_rrdcached_survive_its_kill_9(
    tmp_path: Path, rrdcached: Callable[[], RRDCached]
) -> None:
    """kill -9 of rrdcached after 600 acknowledged updates: all 600 are there after journal replay."""
    daemon = rrdcached()
    archive = Archive(tmp_path / "rrd", STEP, daemon.address)
    first = (int(time.time()) - 3 * 86400) // STEP * STEP
    spec = SeriesSpec("GAUGE", 2, None, None)
    for t in range(first + 1, first + 601):
        result = archive.write([Update("acked/ledger", t, value_at(t), spec)])
        assert result.written == 1 and not result.errors
    archive.close()
    daemon.stop(kill=True)
    daemon = rrdcached()
    archive = Archive(tmp_path / "rrd", STEP, daemon.address)
    try:
        assert archive.last("acked/ledger") == (first + 600, value_at(first + 600))
    finally:
        archive.close()

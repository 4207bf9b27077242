"""Peers away at start or for a while (the database, rrdcached): `rexmon run` goes on and says so once."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rrd.archive import Archive
from tests.alarms.conftest import HTTPReceiver
from tests.fixtures.postgres import PostgresServer, start_postgres
from tests.fixtures.rrdcached import RRDCached
from tests.reliability.helpers import Collector, LedgerWriter, checkpoint, munin_plugin, wait_for
from tests.reliability.ledger import value_at

STEP = 60
#: steady slurpers (3 metrics each) writing every second while rrdcached is away
STEADY = 100
#: how long rrdcached stays away
OUTAGE = 20


@pytest.fixture
def receiver() -> Iterator[HTTPReceiver]:
    r = HTTPReceiver()
    yield r
    r.close()


@pytest.fixture
def stopped_postgres() -> Iterator[PostgresServer]:
    """An initialised PostgreSQL that is not running (its port refuses connections) until the test
    calls ``start_again``."""
    base = Path(tempfile.mkdtemp(prefix="rexmon-pg-away-"))
    base.chmod(0o755)
    pg = start_postgres(base)
    pg.stop()
    yield pg
    pg.stop()
    shutil.rmtree(base, ignore_errors=True)


def test_run_starts_while_the_database_is_unreachable(
    tmp_path: Path,
    write_config: Callable[..., Path],
    plugins: Path,
    collectors: list[Collector],
    receiver: HTTPReceiver,
    stopped_postgres: PostgresServer,
) -> None:
    """`rexmon run` started while PostgreSQL is down: it runs and archives, says once that the alarms wait for the database, and evaluates (CRITICAL mailed) once it answers."""  # noqa: E501
    value = tmp_path / "value.txt"
    value.write_text("95\n")
    plugin = munin_plugin(
        tmp_path / "plugins.d",
        "temp",
        'if [ "$1" = config ]; then printf "temp.label temp\\ntemp.critical 90\\n"; exit 0; fi\n'
        f'echo "temp.value $(cat {value})"\n',
    )
    cfg = write_config(
        f'[database]\nurl = "{stopped_postgres.url()}"\n'
        f'[[slurper]]\nid = "room"\ntype = "munin"\ninterval = 1\nplugin = "{plugin}"\n'
        f'[[notify]]\nurl = "{receiver.url()}"\n'
    )
    collector = Collector(cfg, plugins, tmp_path / "rexmon.log")
    collectors.append(collector)
    collector.start()
    assert collector.proc is not None
    archive = Archive(tmp_path / "rrd", STEP)
    try:
        wait_for(lambda: (archive.last("room/temp") or (0, None))[1] == 95.0, 60, "95 archived")
        value.write_text("96\n")
        wait_for(lambda: (archive.last("room/temp") or (0, None))[1] == 96.0, 30, "96 archived")
        assert collector.proc.poll() is None, collector.output()[-2000:]
        assert receiver.bodies == []
        stopped_postgres.start_again()
        wait_for(lambda: len(receiver.bodies) == 1, 90, "the CRITICAL once PostgreSQL answers")
    finally:
        archive.close()
    assert collector.stop() == 0
    log = collector.output()
    assert log.count("alarms: cannot start") == 1, log[-3000:]
    assert "alarms: the database answers; evaluation started" in log
    assert "CRITICAL room/temp" in receiver.bodies[0]["title"]
    assert "Traceback" not in log


def test_rrdcached_away_for_a_while(
    tmp_path: Path,
    write_config: Callable[..., Path],
    plugins: Path,
    rrdcached: Callable[[], RRDCached],
    collectors: list[Collector],
) -> None:
    """rrdcached killed for 20 s under `rexmon run` (100 slurpers of 3 metrics every second and a checkpointing ledger): one log line when writes start failing and one when they succeed again, not one per metric per round; every ledger value is archived after it."""  # noqa: E501
    daemon = rrdcached()
    steady = "".join(
        f'\n[[slurper]]\nid = "s{i:03d}"\ntype = "steady"\ninterval = 1\ntimeout = 5\n' for i in range(STEADY)
    )
    cfg = write_config(
        f'[archive]\nrrd_dir = "{tmp_path / "rrd"}"\nstep = {STEP}\nrrdcached = "{daemon.address}"\n'
        f'[scheduler]\nstate_dir = "{tmp_path / "state"}"\njitter = 0\nworkers = 8\n'
        f'[[slurper]]\nid = "books"\ntype = "ledger"\ninterval = 1\nsource = "{tmp_path / "ledger.txt"}"\n'
        + steady
    )
    first = (int(time.time()) - 3 * 86400) // STEP * STEP
    writer = LedgerWriter(tmp_path / "ledger.txt", first, rate=2).start()
    state = tmp_path / "state"
    collector = Collector(cfg, plugins, tmp_path / "rexmon.log")
    collectors.append(collector)
    collector.start()
    wait_for(
        lambda: len(list((tmp_path / "rrd").glob("s*/*.rrd"))) >= 3 * STEADY, 120, "every slurper's files"
    )
    wait_for(lambda: checkpoint(state, "books") > first + 20 * STEP, 60, "the ledger checkpoint to advance")
    daemon.stop(kill=True)
    wait_for(lambda: "archive: every write fails" in collector.output(), 30, "the outage's log line")
    time.sleep(OUTAGE)
    daemon = rrdcached()
    wait_for(lambda: "archive: writes succeed again" in collector.output(), 60, "the recovery's log line")
    last = writer.stop()
    wait_for(lambda: checkpoint(state, "books") >= last, 120, "the ledger to catch up")
    assert collector.stop() == 0
    log = collector.output()
    archive_lines = [ln for ln in log.splitlines() if "archive:" in ln]
    assert len(archive_lines) <= 3, archive_lines[:20]
    assert log.count("archive: every write fails") == 1
    assert log.count("archive: writes succeed again") == 1
    archive = Archive(tmp_path / "rrd", STEP, daemon.address)
    try:
        series = archive.fetch("books/ledger", first, last)
    finally:
        archive.close()
    got = {series.start + (i + 1) * series.step: v for i, v in enumerate(series.values)}
    missing = [t for t in range(first + STEP, last + 1, STEP) if got.get(t) != value_at(t)]
    assert missing == [], missing[:20]
    assert "Traceback" not in log

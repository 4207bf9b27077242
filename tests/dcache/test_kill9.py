"""kill -9 of ``rexmon run`` between archiving a dcache run's readings and committing its checkpoint.

The collector is the real CLI in its own process, with a real PostgreSQL billing database being
written to and a real rrdcached. To die at exactly the dangerous moment, the launcher wraps
``CheckpointStore.save``: once armed (a marker file), the save of the checkpoint of a dcache run that
started from the committed checkpoint and emitted the readings it prepared (archived by then) sends
SIGKILL to its own process, so the archive holds values the
committed checkpoint does not know about. After a restart the totals must still equal SQL's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rrd.archive import Archive
from tests.dcache.conftest import BillingDB
from tests.dcache.test_totals import archived_sums, emitted_through
from tests.dcache.totals import sql_totals
from tests.fixtures.rrdcached import RRDCached
from tests.reliability.helpers import REPO, wait_for

STEP = 5
LAUNCH = """
import json, os, signal
from pathlib import Path
import rexmon.state
import slurpers.dcache

marker = Path(os.environ["DCACHE_KILL_MARKER"])
save = rexmon.state.CheckpointStore.save
collect = slurpers.dcache.DCacheSlurper.collect
loaded = {}  # id of a run's new state -> the state that run started from

def collect_and_note(self, ctx):
    readings = collect(self, ctx)
    loaded[id(ctx.new_state)] = dict(ctx.state)
    return readings

def save_or_die(self, slurper_id, state):
    started_from = loaded.pop(id(state), None)
    if slurper_id == "dc" and marker.exists() and started_from and started_from.get("prepared"):
        committed = json.loads((self.directory / "dc.json").read_text())
        if committed == started_from:  # this run archived what the committed state prepared
            marker.unlink()
            os.kill(os.getpid(), signal.SIGKILL)
    save(self, slurper_id, state)

slurpers.dcache.DCacheSlurper.collect = collect_and_note
rexmon.state.CheckpointStore.save = save_or_die
from rexmon.cli import main
main()
"""
INSERT = (
    "INSERT INTO billinginfo (datestamp, cellname, action, transaction, transfersize, isnew, errorcode,"
    " errormessage, protocol, initiator, p2p, fqan, storageclass) VALUES (%s, 'dcpool07_1@dcpool07Domain',"
    " 'transfer', %s, %s, %s, %s, '', 'GFtp-2.0', %s, %s, '/atlas', 'atlas:datadisk@osm')"
)


class Feeder:
    """Commits batches of rows every 0.2 s: current ones, late ones (behind the closed buckets), copies."""

    def __init__(self, db: BillingDB) -> None:
        self.db = db
        self.n = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            now = time.time()
            rows = []
            for i in range(4):
                self.n += 1
                at = now - (3 * STEP + 1 if i == 3 else 0.5)  # one row in four is committed late
                rows.append(
                    (datetime.fromtimestamp(at, UTC), f"pool:k9:{self.n}", 1000 + self.n, i % 2 == 0,
                     0 if self.n % 7 else 666, "<undefined>" if i else None, None if i == 2 else False)
                )  # fmt: skip
            rows.append(rows[0])  # a duplicate delivery
            self.db.executemany(INSERT, rows)

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(10)
        return time.time()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _state(state_dir: Path) -> dict[str, object]:
    try:
        data = json.loads((state_dir / "dc.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def test_kill_9_between_archive_and_checkpoint_keeps_totals(
    billing: BillingDB,
    rrdcached_unix: RRDCached,
    write_config: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """kill -9 of `rexmon run` after the archive write and before the checkpoint: totals equal SQL's after restart."""  # noqa: E501
    config = write_config(
        f"""
        [archive]
        rrd_dir = "{tmp_path / "rrd"}"
        step = {STEP}
        rrdcached = "{rrdcached_unix.address}"

        [scheduler]
        state_dir = "{tmp_path / "state"}"
        jitter = 0

        [[slurper]]
        id = "dc"
        type = "dcache"
        interval = 1
        timeout = 10
        url = {{ env = "DCACHE_URL" }}
        step = {STEP}
        lag = 2
        reconcile_every = 3
        late_horizon = "5m"
        """
    )
    marker = tmp_path / "kill-at-checkpoint"
    env = {
        **os.environ,
        "DCACHE_URL": billing.url,
        "DCACHE_KILL_MARKER": str(marker),
        "PYTHONPATH": str(REPO),
    }
    argv = [sys.executable, "-c", LAUNCH, "--config", str(config), "--log-level", "info", "run"]
    log = (tmp_path / "rexmon.log").open("ab")
    state_dir = tmp_path / "state"

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True)

    proc = start()
    try:
        with Feeder(billing) as feeder:
            wait_for(lambda: bool(_state(state_dir).get("prepared")), 60, "the first prepared buckets")
            time.sleep(3 * STEP)
            marker.touch()
            wait_for(lambda: proc.poll() is not None, 60, "rexmon run to be killed at its checkpoint")
            assert proc.returncode == -signal.SIGKILL and not marker.exists()
            killed = _state(state_dir)
            archive = Archive(tmp_path / "rrd", STEP, rrdcached_unix.address)
            last = archive.last("dc/slurper.rows")
            archive.close()
            # the archive has the readings the committed checkpoint still means to emit
            assert last is not None and last[0] >= max(
                t for m, t, _ in killed["prepared"] if m == "slurper.rows"
            )
            proc = start()
            time.sleep(3 * STEP)
            stopped = feeder.stop()
        wait_for(
            lambda: (
                int(_state(state_dir).get("W", 0)) > stopped + 4 * STEP and not _state(state_dir)["pending"]
            ),
            90,
            "the restarted collector to close, re-count and emit every bucket",
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        log.close()
    state = _state(state_dir)
    emitted_to = emitted_through(state, STEP)
    expected = sql_totals(billing, "public", int(state["origin"]), emitted_to)
    archive = Archive(tmp_path / "rrd", STEP, rrdcached_unix.address)
    try:
        got = archived_sums(archive, int(state["origin"]), emitted_to, step=STEP)
    finally:
        archive.close()
    assert got.pop("slurper.late", 0) > 0
    assert feeder.n > 100 and got == expected

"""The database goes away under a running collector: values keep being archived, alarms catch up."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from alarms.pipeline import build
from rexmon.config import load
from rexmon.service import Service
from rrd.archive import Archive
from tests.alarms.conftest import HTTPReceiver
from tests.fixtures.postgres import start_postgres
from tests.reliability.helpers import munin_plugin, wait_for


def _plugin(directory: Path, value_file: Path) -> Path:
    return munin_plugin(
        directory,
        "temp",
        'if [ "$1" = config ]; then printf "temp.label temp\\ntemp.critical 90\\n"; exit 0; fi\n'
        f'echo "temp.value $(cat {value_file})"\n',
    )


@pytest.fixture
def receiver() -> HTTPReceiver:
    r = HTTPReceiver()
    yield r  # type: ignore[misc]
    r.close()


def test_postgresql_down_for_a_while(  # type: ignore[no-untyped-def]
    tmp_path: Path, write_config, receiver, caplog
) -> None:
    """PostgreSQL stopped under `rexmon run`: one log line, values still archived, alarms resume after."""
    caplog.set_level(logging.INFO)
    pg_dir = Path(tempfile.mkdtemp(prefix="rexmon-pg-down-"))
    pg_dir.chmod(0o755)
    pg = start_postgres(pg_dir)
    value = tmp_path / "value.txt"
    value.write_text("95\n")
    plugin = _plugin(tmp_path / "plugins", value)
    cfg = load(write_config(
        f'[database]\nurl = "{pg.url()}"\n'
        f'[[slurper]]\nid = "room"\ntype = "munin"\ninterval = 1\nplugin = "{plugin}"\n'
        f'[[notify]]\nurl = "{receiver.url()}"\n'
    ))  # fmt: skip
    service = Service(cfg, alarms=build(cfg), flush_interval=0.3)
    archive = Archive(cfg.rrd_dir, cfg.archive.step)
    service.start()
    try:
        wait_for(lambda: len(receiver.bodies) == 1, 60, "the CRITICAL notification")
        pg.stop()
        value.write_text("20\n")
        wait_for(lambda: "alarms: evaluation failed" in caplog.text, 60, "a log line naming the failure")
        wait_for(
            lambda: (archive.last("room/temp") or (0, None))[1] == 20.0, 60, "20 archived while PG is down"
        )
        assert len(receiver.bodies) == 1  # nothing can be decided without the alarm state
        pg.start_again()
        wait_for(lambda: len(receiver.bodies) == 2, 90, "the RECOVERY once PostgreSQL is back")
    finally:
        service.stop()
        pg.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)
    assert "CRITICAL room/temp" in receiver.bodies[0]["title"]
    assert "RECOVERY room/temp" in receiver.bodies[1]["title"]
    assert "alarms: the database answers again; evaluation resumed" in caplog.text
    assert caplog.text.count("alarms: evaluation failed") == 1  # said once, not every round
    time.sleep(1.5)
    assert len(receiver.bodies) == 2

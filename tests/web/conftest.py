"""Web fixtures: a real archive filled through rrd.archive, a real SQLite database, the app factory."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from downtime.db import upgrade
from rexmon.config import Config, load
from rrd.archive import Archive, SeriesSpec, Update
from web import create_app

#: a fixed "now" (a whole hour) so graphs, staleness and downtimes are reproducible
NOW = 1_763_730_000 - 1_763_730_000 % 3600
STEP = 60
SPEC = SeriesSpec("GAUGE", 120, None, None)
USER, PASSWORD = "alice", "s3cret pass"

#: metric id -> value as a function of the minute index (two days of data, up to NOW)
SERIES: dict[str, Callable[[int], float]] = {
    "condor/schedd.s1.running": lambda i: 100 + i % 40,
    "condor/schedd.s1.idle": lambda i: 20 + i % 7,
    "condor/schedd.s1.held": lambda i: float(i % 3),
    "load/load": lambda i: 1.5 + (i % 60) / 30,
    "df/_dev_sda1": lambda i: 91.0,
    "df/_dev_sdb1": lambda i: 40.0,
}
#: a slurper that stopped reporting a day ago
STALE = {"old/temperature": lambda i: 21.0}


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def fill_archive(rrd_dir: Path, now: int = NOW, minutes: int = 2 * 1440) -> Archive:
    archive = Archive(rrd_dir, STEP)
    start = now - minutes * STEP
    ups = [
        Update(mid, start + i * STEP, f(i), SPEC) for mid, f in SERIES.items() for i in range(1, minutes + 1)
    ]
    ups += [
        Update(mid, start + i * STEP, f(i), SPEC) for mid, f in STALE.items() for i in range(1, minutes // 2)
    ]
    result = archive.write(ups)
    assert not result.errors, result.errors
    return archive


@dataclass
class Site:
    config: Config
    app: Flask
    archive: Archive
    tmp: Path

    def client(self) -> FlaskClient:
        return self.app.test_client()


def _htpasswd(path: Path) -> Path:
    # htpasswd -B writes $2y$; bcrypt writes $2b$ with the same algorithm
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$", 1)
    path.write_text(
        f"# users who may file downtimes\n{USER}:{hashed}\nbob:{{SHA}}not-bcrypt\n", encoding="utf-8"
    )
    return path


@pytest.fixture
def make_site(tmp_path: Path, write_config: Callable[..., Path]) -> Iterator[Callable[..., Site]]:
    """make_site(public_read, extra, trusted_header) -> a Site (archive filled, database migrated)."""
    made: list[Site] = []

    def _make(public_read: bool = True, extra: str = "", trusted_header: str = "") -> Site:
        htpasswd = _htpasswd(tmp_path / "htpasswd")
        path = write_config(
            f"""
            [web]
            public_read = {"true" if public_read else "false"}
            htpasswd = "{htpasswd}"
            secret_key = "test-secret"
            trusted_header = "{trusted_header}"
            graph_cache_dir = "{tmp_path / "graphs"}"

            [[slurper]]
            id = "load"
            type = "munin"
            interval = 60
            plugin = "/usr/share/munin/plugins/load"
            {extra}
            """
        )
        config = load(path)
        archive = fill_archive(config.rrd_dir)
        upgrade(config.database_url)
        site = Site(config, create_app(config, clock=lambda: float(NOW)), archive, tmp_path)
        made.append(site)
        return site

    yield _make
    for s in made:
        s.archive.close()


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site()


@pytest.fixture
def client(site: Site) -> FlaskClient:
    return site.client()


#: alarm states written as the alarm engine would persist them
STATES = {
    "df/_dev_sda1": ("CRITICAL", "~:80", "~:90"),
    "load/load": ("WARNING", "~:2", "~:5"),
    "condor/schedd.s1.held": ("OK", "~:10", None),
}
#: slurpers on the overview, problems first: CRITICAL, then WARNING, then the stale slurper, then OK
EXPECTED_ORDER = ["df", "load", "old", "condor"]
EXPECTED_ICON = {"df/_dev_sda1": "CRITICAL", "load/load": "WARNING", "old/temperature": "stale"}


def set_states(site: Site) -> None:
    """Persist alarm states through the alarm store (the web only reads them)."""
    from alarms.engine import MetricRecord
    from alarms.store import AlarmStore
    from downtime.db import make_engine

    engine = make_engine(site.config.database_url)
    names = {f.name for f in dataclasses.fields(MetricRecord)}
    records = []
    for mid, (state, w, c) in STATES.items():
        ranges = {"spec_warning": w, "spec_critical": c}
        if "warning" in names:  # the effective ranges, once the engine records them
            ranges.update(warning=w, critical=c)
        records.append(MetricRecord(mid, state, NOW - 600, value=None, time=NOW, **ranges))  # type: ignore[arg-type]
    AlarmStore(engine).commit(records, now=NOW)
    engine.dispose()

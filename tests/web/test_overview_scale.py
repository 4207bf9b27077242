"""The overview at scale: no flush of every file, compressed answers, folded groups (issue #15 item 5).

Timing is measured in bench/bench_web.py only; these tests check the behaviour that makes it scale,
against a real rrdcached.
"""

from __future__ import annotations

import dataclasses
import gzip
import re
from collections.abc import Callable
from pathlib import Path

from alarms.engine import MetricRecord
from alarms.store import AlarmStore
from downtime.db import make_engine
from rrd.archive import Archive, Update
from rrd.rrdcached import RRDCachedClient
from tests.fixtures.rrdcached import start_rrdcached
from tests.web.conftest import NOW, SPEC, STEP, Site
from web import create_app

MANY = 300


def _flushes(address: str) -> int:
    client = RRDCachedClient(address, timeout=5.0)
    try:
        _, _, lines = client.command("STATS")
    finally:
        client.close()
    stats = dict(line.split(": ", 1) for line in lines)
    return int(stats["FlushesReceived"])


def test_the_overview_flushes_only_the_files_whose_values_it_shows(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    site = make_site()
    site.archive.write([Update(f"many/m{i:03d}", NOW, float(i), SPEC) for i in range(MANY)])
    engine = make_engine(site.config.database_url)
    AlarmStore(engine).commit([MetricRecord("many/m007", "CRITICAL", NOW - 60, value=7.0, time=NOW)], now=NOW)
    engine.dispose()
    daemon = start_rrdcached(site.config.rrd_dir, tmp_path / "daemon", tcp=False)
    try:
        writer = Archive(site.config.rrd_dir, STEP, daemon.address, journal_dir=tmp_path / "journal")
        assert not writer.write([Update("many/m007", NOW + STEP, 9.5, SPEC)]).errors  # pending in rrdcached
        config = dataclasses.replace(
            site.config, archive=dataclasses.replace(site.config.archive, rrdcached=daemon.address)
        )
        app = create_app(config, clock=lambda: float(NOW + STEP))
        client = app.test_client()
        before = _flushes(daemon.address)
        html = client.get("/").get_data(as_text=True)
        flushed = _flushes(daemon.address) - before
        # the problem's value is read (flushed first, so the pending 9.5 shows), the 300 others are not
        assert re.search(r'data-id="many/m007".*?<span class="val">9.50</span>', html, re.S)
        assert 1 <= flushed <= 2, flushed
        assert html.count('class="metric ') == 2  # m007 under "needs attention" and in its open group
        writer.close()
        app.extensions["rexmon"]["monitor"].close()
    finally:
        daemon.stop()


def test_answers_are_compressed_for_browsers_that_accept_gzip(site: Site) -> None:
    client = site.client()
    plain = client.get("/?q=/")
    packed = client.get("/?q=/", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.headers["Vary"]
    assert gzip.decompress(packed.get_data()) == plain.get_data()
    assert len(packed.get_data()) * 3 < len(plain.get_data())
    api = client.get("/api/metrics", headers={"Accept-Encoding": "gzip"})
    assert api.headers["Content-Encoding"] == "gzip" and gzip.decompress(api.get_data()).startswith(b"[")
    png = client.get("/img/load/load.png?period=hour", headers={"Accept-Encoding": "gzip"})
    assert png.status_code == 200 and "Content-Encoding" not in png.headers


def test_groups_that_need_nobody_are_folded_and_filled_when_opened(site: Site) -> None:
    engine = make_engine(site.config.database_url)
    AlarmStore(engine).commit([MetricRecord("condor/schedd.s1.held", "WARNING", NOW - 60, time=NOW)], now=NOW)
    engine.dispose()
    html = site.client().get("/").get_data(as_text=True)
    assert re.search(r'data-key="condor/schedd.s1" data-worst="warning"><details open>', html)
    assert '<section class="slurper folded" data-slurper="df">' in html  # nothing there needs anyone
    assert 'data-id="df/_dev_sda1"' not in html
    lines = site.client().get("/overview/slurper/df").get_data(as_text=True)
    assert re.search(r'data-key="df/" data-worst="unjudged"><details><summary>', lines)
    assert site.client().get("/overview/slurper/nope").status_code == 404
    body = site.client().get("/overview/group/df%2F").get_data(as_text=True)
    assert 'data-id="df/_dev_sda1"' in body and 'data-id="df/_dev_sdb1"' in body
    assert site.client().get("/overview/group/nope%2Fx").status_code == 404
    problems = site.client().get("/?problems=1").get_data(as_text=True)
    assert re.findall(r'data-slurper="([^"]+)"', problems) == ["condor"]

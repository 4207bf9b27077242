"""The site while the archive's rrdcached is away: the files as on disk, a banner, no error pages."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import rrd.flush as flush_mod
from rrd.archive import Archive, Update
from tests.fixtures.rrdcached import start_rrdcached
from tests.web.conftest import NOW, SPEC, STEP, Site
from web import create_app

PAGES = ["/", "/graph/load/load", "/graph/condor", "/img/load/load.png", "/img/condor.png?group=schedd.s1"]
API = ["/api/metrics", "/api/metrics/load/load/series", "/api/metrics/load/load/series.csv"]


def test_pages_and_api_read_the_files_on_disk_and_say_so(
    make_site: Callable[..., Site],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(flush_mod, "FLUSH_RETRY_SECONDS", 1.0)
    site = make_site()
    daemon = start_rrdcached(site.config.rrd_dir, tmp_path / "daemon", tcp=False)
    try:
        # values through rrdcached as a collector writes them
        writer = Archive(site.config.rrd_dir, STEP, daemon.address, journal_dir=tmp_path / "journal")
        assert not writer.write([Update("load/load", NOW + STEP, 9.5, SPEC)]).errors
        config = dataclasses.replace(
            site.config, archive=dataclasses.replace(site.config.archive, rrdcached=daemon.address)
        )
        app = create_app(config, clock=lambda: float(NOW + STEP))
        client = app.test_client()
        assert "rrdcached is not answering" not in client.get("/").get_data(as_text=True)
        assert client.get("/api/metrics?match=load/load").get_json()[0]["value"] == 9.5  # flushed to disk
        assert not writer.write([Update("load/load", NOW + 2 * STEP, 7.25, SPEC)]).errors  # pending
        daemon.stop(kill=True)
        with caplog.at_level(logging.WARNING, logger="rrd.flush"):
            for url in PAGES:
                r = client.get(url)
                assert r.status_code == 200, (url, r.status_code)
                if r.mimetype == "text/html":
                    html = r.get_data(as_text=True)
                    assert "rrdcached is not answering" in html and daemon.address in html, url
                else:
                    assert r.get_data()[:8] == b"\x89PNG\r\n\x1a\n", url
            for url in API:
                assert client.get(url).status_code == 200, url
        # the pending 7.25 died with rrdcached (the collector's journal replays it): disk has 9.5
        assert client.get("/api/metrics?match=load/load").get_json()[0]["value"] == 9.5
        warnings = [r for r in caplog.records if "showing the RRD files as they are on disk" in r.message]
        assert len(warnings) == 1, [r.message for r in caplog.records]  # once, not once per request
        # back again: the next try, FLUSH_RETRY_SECONDS after the last failure, finds it; no banner
        daemon = start_rrdcached(site.config.rrd_dir, tmp_path / "daemon", tcp=False)
        time.sleep(1.1)
        assert "rrdcached is not answering" not in client.get("/").get_data(as_text=True)
    finally:
        app.extensions["rexmon"]["monitor"].close()
        writer.close()
        daemon.stop()


def test_the_series_api_first_after_rrdcached_went_away_reads_the_disk(
    make_site: Callable[..., Site], tmp_path: Path
) -> None:
    """No page has noticed yet that rrdcached is gone: the series read itself falls back to the files."""
    site = make_site()
    daemon = start_rrdcached(site.config.rrd_dir, tmp_path / "daemon", tcp=False)
    writer = Archive(site.config.rrd_dir, STEP, daemon.address, journal_dir=tmp_path / "journal")
    try:
        assert not writer.write([Update("load/load", NOW + STEP, 9.5, SPEC)]).errors
        writer.sync()
        config = dataclasses.replace(
            site.config, archive=dataclasses.replace(site.config.archive, rrdcached=daemon.address)
        )
        app = create_app(config, clock=lambda: float(NOW + STEP))
        client = app.test_client()
        daemon.stop(kill=True)
        for url in API[1:]:
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code, r.get_data(as_text=True)[:200])
        values = [v for v in client.get(API[1]).get_json()["values"] if v is not None]
        assert 9.5 in values
    finally:
        app.extensions["rexmon"]["monitor"].close()
        writer.close()
        daemon.stop()

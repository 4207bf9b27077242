"""Honest states and units on the overview and in /api/metrics (issue #15 items 1 and 2).

The alarm engine's states are persisted through the alarm store and the metric catalogue through the
collector's own writer (alarms.catalogue), as a running collector does; the web only reads them.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from alarms.catalogue import CatalogueWriter
from alarms.engine import MetricRecord
from alarms.observation import Observation
from alarms.store import AlarmStore
from downtime.db import make_engine
from rrd.archive import SeriesSpec, Update
from rrd.graph import GraphRenderer, Rendered
from rrd.graphargs import GraphSpec
from tests.web.conftest import NOW, SPEC, Site

BYTES = SeriesSpec("GAUGE", 120, 0, None)
RATE = SeriesSpec("DERIVE", 120, 0, None)


def record(mid: str, state: str, **kw: object) -> MetricRecord:
    rec = MetricRecord(mid, state, NOW - 600, value=None, time=NOW, rule="test rule")  # type: ignore[arg-type]
    return dataclasses.replace(rec, **kw)  # type: ignore[arg-type]


def collector_round(site: Site, observations: list[Observation], records: list[MetricRecord]) -> None:
    """What a collector's alarm sink writes: engine records and the catalogue rows of what it saw."""
    engine = make_engine(site.config.database_url)
    try:
        AlarmStore(engine).commit(records, now=NOW)
        writer = CatalogueWriter(engine)
        with engine.begin() as conn:
            written = writer.note(conn, observations, NOW)
        writer.written(written)
    finally:
        engine.dispose()


def obs(mid: str, unit: str, base: int = 1000, ds_type: str = "GAUGE", graph: str = "") -> Observation:
    return Observation(mid, NOW, 1.0, ds_type, 60.0, unit=unit, base=base, label=mid, graph=graph)


def test_no_rule_is_unjudged_grey_and_counted_apart_never_ok(site: Site) -> None:
    collector_round(site, [], [record("df/_dev_sda1", "CRITICAL"), record("load/load", "OK")])
    html = site.client().get("/?q=/").get_data(as_text=True)
    li = re.search(r'<li class="metric state-unjudged" data-id="df/_dev_sdb1".*?</li>', html, re.S)
    assert li and 'href="#i-unjudged"' in li.group(0) and 'aria-label="unjudged"' in li.group(0)
    assert re.search(r'data-id="load/load" data-state="ok"', html)
    assert re.search(r'count-ok".*?count-n">1<', html, re.S)
    assert re.search(r'count-critical".*?count-n">1<', html, re.S)
    assert re.search(r'count-unjudged".*?count-n">5<', html, re.S)
    rows = {r["id"]: r for r in site.client().get("/api/metrics").get_json()}
    assert rows["df/_dev_sdb1"]["state"] == "UNJUDGED" and rows["df/_dev_sdb1"]["rule"] is None
    assert rows["df/_dev_sda1"]["state"] == "CRITICAL" and rows["df/_dev_sda1"]["rule"] == "test rule"
    assert rows["df/_dev_sda1"]["since"] == NOW - 600


def test_stale_comes_from_the_engine_not_from_the_age_of_the_value(site: Site) -> None:
    # old/temperature stopped a day ago, but the engine (whose rule allows a day) says it is fresh;
    # df/_dev_sdb1 has a value of NOW, but the engine says no value arrived in time
    collector_round(
        site,
        [],
        [
            record("old/temperature", "OK", time=NOW - 86400),
            record("df/_dev_sdb1", "UNKNOWN", stale=True),
        ],
    )
    rows = {r["id"]: r for r in site.client().get("/api/metrics").get_json()}
    assert (rows["old/temperature"]["state"], rows["old/temperature"]["icon"]) == ("OK", "ok")
    assert (rows["df/_dev_sdb1"]["state"], rows["df/_dev_sdb1"]["icon"]) == ("UNKNOWN", "stale")


def test_units_with_prefixes_on_the_overview_the_metric_page_and_the_api(site: Site) -> None:
    site.archive.write([Update("mem/used", NOW - 60, 7.3e7, BYTES), Update("mem/used", NOW, 7.3e7, BYTES)])
    start = NOW - 30 * 60
    site.archive.write([Update("net/in", start + i * 60, 7.24e7 * 60 * i, RATE) for i in range(1, 31)])
    collector_round(
        site, [obs("mem/used", "bytes", 1024), obs("net/in", "B", 1000, "DERIVE"), obs("load/load", "")], []
    )
    html = site.client().get("/?q=/").get_data(as_text=True)
    assert re.search(r'data-id="mem/used".*?<span class="val">69.6 MiB</span>', html, re.S)
    assert re.search(r'data-id="net/in".*?<span class="val"[^>]*>72.4 MB/s</span>', html, re.S)
    rows = {r["id"]: r for r in site.client().get("/api/metrics").get_json()}
    assert (rows["mem/used"]["unit"], rows["mem/used"]["base"], rows["mem/used"]["display"]) == (
        "B",
        1024,
        "69.6 MiB",
    )
    assert (rows["net/in"]["unit"], rows["net/in"]["display"]) == ("B/s", "72.4 MB/s")
    series = site.client().get(f"/api/metrics/mem/used/series?start={NOW - 600}&end={NOW}").get_json()
    assert (series["unit"], series["base"]) == ("B", 1024)


def test_a_metric_archived_before_the_catalogue_shows_its_bare_value(site: Site) -> None:
    site.archive.write([Update("mem/old", NOW, 7.3e7, SPEC)])
    rows = {r["id"]: r for r in site.client().get("/api/metrics").get_json()}
    assert (rows["mem/old"]["unit"], rows["mem/old"]["display"]) == ("", "73.0 M")


def test_the_catalogue_is_written_only_for_new_or_changed_shapes(site: Site) -> None:
    engine = make_engine(site.config.database_url)
    try:
        writer = CatalogueWriter(engine)
        with engine.begin() as conn:
            first = writer.note(conn, [obs("a/x", "B", 1024), obs("a/y", "jobs")], NOW)
        writer.written(first)
        with engine.begin() as conn:
            again = writer.note(conn, [obs("a/x", "B", 1024), obs("a/y", "cores")], NOW + 60)
        writer.written(again)
    finally:
        engine.dispose()
    assert sorted(first) == ["a/x", "a/y"] and sorted(again) == ["a/y"]


def test_a_state_change_reaches_an_overview_built_before_it(site: Site) -> None:
    client = site.client()
    collector_round(site, [], [record("load/load", "OK")])
    assert 'data-id="load/load"' not in client.get("/").get_data(as_text=True)  # OK: nothing to show
    version = client.get("/overview/changes").get_json()["version"]
    collector_round(site, [], [record("load/load", "CRITICAL", since=NOW - 30)])
    html = client.get("/").get_data(as_text=True)
    attention = html.split('id="h-attention"')[1].split("</section>")[0]
    assert 'data-id="load/load" data-state="critical"' in attention
    changed = client.get("/overview/changes", query_string={"since": version}).get_json()["parts"]
    assert {"counts", "attention", "s:load"} <= set(changed)


def test_a_unit_with_its_own_prefix_takes_one_prefix_in_the_drawn_legend(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTCondor reports memory in MiB: 512,000 MiB is drawn as 500 GiB, never rrdtool's '512 kMiB'."""
    site.archive.write([Update("condor/memory", NOW - 60 * i, 512_000.0, BYTES) for i in (2, 1, 0)])
    collector_round(site, [obs("condor/memory", "MiB")], [])
    drawn: list[Rendered] = []
    render = GraphRenderer.render

    def keep(self: GraphRenderer, spec: GraphSpec, *, use_cache: bool = True) -> Rendered:
        drawn.append(render(self, spec, use_cache=False))  # the image the page gets, with graphv's info
        return drawn[-1]

    monkeypatch.setattr(GraphRenderer, "render", keep)
    resp = site.client().get(f"/img/condor/memory.png?start={NOW - 3600}&end={NOW}")
    assert resp.status_code == 200 and resp.data == drawn[0].data
    legends = [str(v) for k, v in drawn[0].info.items() if k.startswith("legend[")]
    last = next(text.split() for text in legends if text.startswith("last"))
    assert last[1:] == ["500.00", "GiB"], legends

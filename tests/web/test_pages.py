"""Every page and image through the Flask test client, over a real archive and SQLite database."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from rrd.archive import SeriesSpec, Update
from tests.web.conftest import NOW, SPEC, Site


def _slurper_order(html: str) -> list[str]:
    return re.findall(r'<section class="slurper[^"]*" data-slurper="([^"]+)"', html)


def test_overview_lists_every_slurper_and_metric_with_icons(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    # without alarm states nothing is judged: no metric is OK, and the web does not call one stale
    assert _slurper_order(html) == sorted(_slurper_order(html)) == ["condor", "df", "load", "old"]
    for sid in ("condor", "df", "load", "old"):  # folded: nothing in them needs someone
        assert f'<section class="slurper folded" data-slurper="{sid}"><details><summary>' in html
    assert "data-id=" not in html and "data-key=" not in html  # their groups come when opened
    lines = client.get("/overview/slurper/condor").get_data(as_text=True)
    assert re.search('<li class="group" data-key="condor/schedd.s1" data-worst="unjudged"><details>', lines)
    html = client.get("/?q=/").get_data(as_text=True)  # a filter opens the groups it keeps
    for mid in ("condor/schedd.s1.running", "df/_dev_sda1", "load/load", "old/temperature"):
        assert f'data-id="{mid}"' in html
    assert 'aria-label="unjudged"' in html and "stale slurper" not in html
    assert re.search(r'count-unjudged".*?count-n">7<', html, re.S)
    assert re.search(r'count-ok".*?count-n">0<', html, re.S)
    assert 'id="console-q"' in html and "auto-refresh" in html


def test_overview_refresh_sends_only_the_parts_that_changed(site: Site) -> None:
    client = site.client()
    first = client.get("/overview/changes").get_json()
    assert first["order"][:3] == ["counts", "attention", "silenced"] and "s:condor" in first["order"]
    assert set(first["parts"]) == set(first["order"])
    assert 'data-slurper="condor"' in first["parts"]["s:condor"]
    same = client.get("/overview/changes", query_string={"since": first["version"]}).get_json()
    assert same["parts"] == {} and same["version"] == first["version"]
    site.archive.write([Update("new/thing", NOW, 1.0, SPEC)])
    changed = client.get("/overview/changes", query_string={"since": first["version"]}).get_json()
    assert sorted(changed["parts"]) == ["counts", "s:new"]  # the new slurper and the counts, nothing else
    group = client.get("/overview/group/condor%2Fschedd.s1").get_data(as_text=True)
    assert 'data-id="condor/schedd.s1.held"' in group and "/img/condor.png?group=schedd.s1" in group


def test_metric_graph_page(client: FlaskClient) -> None:
    html = client.get("/graph/condor/schedd.s1.running?period=week").get_data(as_text=True)
    assert "<h1>" in html and "condor/schedd.s1.running" in html
    assert "/img/condor/schedd.s1.running.png?period=week" in html
    assert 'data-series="/api/metrics/condor/schedd.s1.running/series"' in html
    assert "vendor/uPlot.iife.min.js" in html


def test_custom_range_on_graph_page(client: FlaskClient) -> None:
    html = client.get(f"/graph/load/load?start={NOW - 7200}&end={NOW - 3600}").get_data(as_text=True)
    assert f"start={NOW - 7200}" in html and "2025-11-21 11:00 UTC" in html


def test_slurper_page_has_one_graph_per_group(client: FlaskClient) -> None:
    html = client.get("/graph/condor").get_data(as_text=True)
    assert html.count('<img class="graph"') == 1
    assert "/img/condor.png?" in html and "group=schedd.s1" in html
    assert client.get("/graph/nosuch").status_code == 404


def test_images_png_svg_and_group(client: FlaskClient) -> None:
    png = client.get("/img/load/load.png?period=day")
    assert png.status_code == 200 and png.mimetype == "image/png" and png.data[:4] == b"\x89PNG"
    svg = client.get("/img/load/load.svg?period=hour&size=small")
    assert svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    group = client.get("/img/condor.png?group=schedd.s1&period=day")
    assert group.status_code == 200 and group.data[:4] == b"\x89PNG"
    assert client.get("/img/condor.png?group=nosuch").status_code == 404


def test_image_cache_invalidated_by_new_data(site: Site) -> None:
    client = site.client()
    assert client.get("/img/load/load.png").headers["X-Graph-Cache"] == "miss"
    assert client.get("/img/load/load.png").headers["X-Graph-Cache"] == "hit"
    site.archive.write([Update("load/load", NOW + 1, 3.0, SPEC)])
    assert client.get("/img/load/load.png").headers["X-Graph-Cache"] == "miss"


def test_unknown_metric_and_bad_params(client: FlaskClient) -> None:
    assert client.get("/graph/load/nosuch").status_code == 404
    assert client.get("/img/load/nosuch.png").status_code == 404
    r = client.get("/img/load/load.png?width=99999")
    assert r.status_code == 400 and "width" in r.get_data(as_text=True)
    r = client.get("/graph/load/load?period=decade")
    assert r.status_code == 400 and "period" in r.get_data(as_text=True)


def test_config_page_masks_notify_secrets(make_site) -> None:  # type: ignore[no-untyped-def]
    site = make_site(extra='\n[[notify]]\nname = "ops"\nurl = "mailtos://ops:hunter2@mail.example.org"\n')
    client = site.client()
    html = client.get("/config").get_data(as_text=True)
    assert "ops" in html and "mailtos://" in html
    for url in ("/config", "/", "/api/alarms", "/api/metrics", "/api/openapi.json"):
        assert "hunter2" not in client.get(url).get_data(as_text=True)


def test_counter_shows_its_rate_per_second_and_the_raw_value_on_hover(site: Site) -> None:
    counter = SeriesSpec("COUNTER", 120, 0, None)
    start = NOW - 30 * 60
    site.archive.write([Update("cpu/idle", start + i * 60, 654_500 + 600 * i, counter) for i in range(1, 31)])
    html = site.client().get("/?q=/").get_data(as_text=True)
    li = re.search(r'<li class="metric[^"]*" data-id="cpu/idle".*?</li>', html, re.S)
    assert li, "cpu/idle is not on the overview"
    assert '<span class="val" title="counter 672 k">10/s</span>' in li.group(0)
    page = site.client().get("/graph/cpu/idle").get_data(as_text=True)
    assert "10/s" in page
    gauge = re.search(r'data-id="load/load".*?<span class="val">([^<]+)</span>', html, re.S)
    assert gauge and not gauge.group(1).endswith("/s")


def test_overview_shows_a_new_archived_value(site: Site) -> None:
    client = site.client()
    assert '<span class="val">40</span>' in client.get("/?q=sdb1").get_data(as_text=True)
    site.archive.write([Update("df/_dev_sdb1", NOW + 1, 77.0, SPEC)])
    html = client.get("/?q=sdb1").get_data(as_text=True)
    assert re.search(r'data-id="df/_dev_sdb1".*?<span class="val">77</span>', html, re.S)


def test_range_form_shows_and_accepts_human_times(client: FlaskClient) -> None:
    html = client.get(f"/graph/load/load?start={NOW - 7200}&end={NOW - 3600}").get_data(as_text=True)
    assert 'name="start" value="2025-11-21 11:00"' in html and 'name="end" value="2025-11-21 12:00"' in html
    assert ">UTC</small>" in html and str(NOW - 7200) + '"' not in html.split("custom-range")[1][:400]
    for start, end in (("2025-11-21 11:00", "2025-11-21T12:00Z"), ("-2h", "-1h"), ("yesterday 11:00", "now")):
        page = client.get("/graph/load/load", query_string={"start": start, "end": end})
        assert page.status_code == 200, (start, end)
    html = client.get("/graph/load/load", query_string={"start": "-2h", "end": "-1h"}).get_data(as_text=True)
    assert "2025-11-21 11:00 UTC – 2025-11-21 12:00 UTC" in html
    bad = client.get("/graph/load/load?start=last+tuesdayish")
    assert bad.status_code == 400 and "start:" in bad.get_data(as_text=True)
    bad = client.get("/graph/condor?end=2025-13-40")
    assert bad.status_code == 400 and "end:" in bad.get_data(as_text=True)


def test_every_image_a_graph_page_links_is_a_picture(client: FlaskClient) -> None:
    for page in ("/graph/condor?period=day", f"/graph/load/load?start={NOW - 7200}&end={NOW}"):
        html = client.get(page).get_data(as_text=True)
        srcs = re.findall(r'<img class="graph" src="([^"]+)"', html)
        assert srcs, page
        for src in srcs:
            img = client.get(src.replace("&amp;", "&"))
            assert img.status_code == 200 and img.data[:4] == b"\x89PNG", src

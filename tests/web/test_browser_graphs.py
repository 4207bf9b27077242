"""The graph pages in a real headless Chromium at 1400 px and 400 px: readable axes (labels read back
from the page), the zone of the images, a zoom kept in the address, acting from the pages, phone width."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import insert

from downtime.db import upgrade
from rexmon.config import load
from rrd.archive import Update
from tests.fixtures.rrdcached import free_port
from tests.web.conftest import NOW, PASSWORD, SPEC, USER, Site, fill_archive, set_states

ROOT = Path(__file__).resolve().parents[2]
WIDTHS = [1400, 400]
#: a throughput around 73 million: uPlot's default axis cut such labels to ",000"
BIG = "net/eth0.rx"


def _big(i: int) -> float:
    return 7.3e7 + (i % 90) * 2.5e5


#: memory in bytes with IEC prefixes (Munin's ``graph_args --base 1024``): 7.3e7 B is 69.6 MiB
MEM = "mem/used"
#: a second series of BIG's graph key with a unit: drawn in a graph of its own (one unit per axis)
TX = "net/eth0.tx"
#: the catalogue rows a collector records for them (unit, base, graph key)
META = {MEM: ("B", 1024, "used"), TX: ("B/s", 1000, "eth0"), BIG: ("", 1000, "eth0")}


def record_meta(site: Site, meta: dict[str, tuple[str, int, str]]) -> None:
    """Write the metric catalogue as the collector does (the web only reads it)."""
    from alarms.catalogue import MetricMetaRow
    from downtime.db import make_engine

    engine = make_engine(site.config.database_url)
    with engine.begin() as conn:
        conn.execute(
            insert(MetricMetaRow),
            [
                {
                    "metric_id": m,
                    "unit": u,
                    "base": b,
                    "label": m,
                    "graph": g,
                    "ds_type": "GAUGE",
                    "updated": NOW,
                }
                for m, (u, b, g) in meta.items()
            ],
        )
    engine.dispose()


@pytest.fixture
def browser_site(make_site: Callable[..., Site], live_server: Callable[[Any], Any]) -> tuple[Site, str]:
    site = make_site()
    start = NOW - 2 * 86400
    site.archive.write(
        [Update(m, start + i * 60, _big(i), SPEC) for i in range(1, 2 * 1440 + 1) for m in (BIG, MEM, TX)]
    )
    record_meta(site, META)
    return site, live_server(site.app).url


@pytest.mark.parametrize("width", WIDTHS)
def test_units_on_the_page_the_axes_and_the_legend(
    chromium: Any, browser_site: tuple[Site, str], width: int
) -> None:
    site, url = browser_site
    context, page = _page(chromium, width)
    try:
        page.goto(url + f"/graph/{MEM}?period=day")
        _chart_ready(page)
        last = page.locator(".last-value").inner_text()
        assert last.endswith(" MiB") and 69 <= float(last.split()[0]) <= 92, last  # 7.3e7 B .. 9.5e7 B
        ticks = json.loads(page.locator("#chart").get_attribute("data-y-ticks"))
        assert ticks and all(t.endswith(" MiB") for t in ticks), ticks
        assert page.evaluate("() => rexmonChart.axes[1].label") == "B"
        box = page.locator("#chart .u-over").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] / 2)
        value = page.locator("#chart .u-legend .u-series").nth(1).locator(".u-value").inner_text()
        assert value.endswith(" MiB") and 69 <= float(value.split()[0]) <= 92, value
        when = page.locator("#chart .u-legend .u-series").first.locator(".u-value").inner_text()
        assert when.endswith(" UTC"), when
        page.screenshot(path=str(site.tmp / f"units-{width}.png"), full_page=True)
    finally:
        context.close()


def test_a_graph_key_with_two_units_gives_two_graphs(chromium: Any, browser_site: tuple[Site, str]) -> None:
    _, url = browser_site
    context, page = _page(chromium, 1400)
    try:
        page.goto(url + "/graph/net?period=day")
        figures = page.locator("#g-eth0 figure.group-graph")
        assert figures.evaluate_all("fs => fs.map(f => f.dataset.unit)") == ["", "B/s"]
        assert figures.nth(1).locator("figcaption").inner_text().startswith("B/s: eth0.tx")
        for i in range(2):  # the group images load lazily: each is drawn once it is scrolled into view
            img = figures.nth(i).locator("img")
            img.scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
        assert page.locator('li.metric a[href*="eth0.tx"] .val').inner_text().endswith("MB/s")
    finally:
        context.close()


def _page(chromium: Any, width: int, **kw: Any) -> Any:
    context = chromium.new_context(viewport={"width": width, "height": 900}, **kw)
    return context, context.new_page()


def _chart_ready(page: Any) -> None:
    page.wait_for_function("() => window.rexmonChart && document.getElementById('chart').dataset.yTicks")


@pytest.mark.parametrize("width", WIDTHS)
def test_values_past_a_million_have_readable_axis_labels(
    chromium: Any, browser_site: tuple[Site, str], width: int
) -> None:
    site, url = browser_site
    context, page = _page(chromium, width)
    try:
        page.goto(url + f"/graph/{BIG}?period=day")
        _chart_ready(page)
        ticks = json.loads(page.locator("#chart").get_attribute("data-y-ticks"))
        assert len(ticks) >= 2 and len(set(ticks)) == len(ticks), ticks
        for t in ticks:  # "73.5 M", never "0,000" or a bare 73500000
            assert t.endswith(" M") and 70 <= float(t.split()[0]) <= 100, ticks
        # every label fits left of the plot: measured with the axis font in the page itself
        widest = page.evaluate(
            """ticks => { const c = document.createElement('canvas').getContext('2d');
                 c.font = rexmonChart.axes[1].font[0];
                 return Math.max(...ticks.map(t => c.measureText(t).width)) / devicePixelRatio; }""",
            ticks,
        )
        plot_left = float(page.locator("#chart").get_attribute("data-plot-left"))
        assert widest < plot_left, (widest, plot_left)
        # the tooltip (uPlot's legend) shows the value under the cursor with its prefix
        box = page.locator("#chart .u-over").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
        value = page.locator("#chart .u-legend .u-series").nth(1).locator(".u-value").inner_text()
        assert value.endswith(" M") and 70 <= float(value.split()[0]) <= 100, value
        page.screenshot(path=str(site.tmp / f"big-{width}.png"), full_page=True)
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_zoom_survives_a_reload_from_its_url(
    chromium: Any, browser_site: tuple[Site, str], width: int
) -> None:
    _, url = browser_site
    context, page = _page(chromium, width)
    try:
        page.goto(url + "/graph/load/load?period=day&tz=America/Chicago")
        _chart_ready(page)
        before = page.evaluate("() => [rexmonChart.scales.x.min, rexmonChart.scales.x.max]")
        box = page.locator("#chart .u-over").bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] * 0.3, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=8)
        page.mouse.up()
        # uPlot zooms at once; the page then loads the range and writes it into the address
        page.wait_for_function("() => new URLSearchParams(location.search).get('start')")
        zoomed = page.evaluate("() => [rexmonChart.scales.x.min, rexmonChart.scales.x.max]")
        address = page.url
        assert f"start={int(zoomed[0])}" in address and f"end={int(zoomed[1])}" in address
        assert "tz=America%2FChicago" in address and "period=" not in address
        assert before[1] - before[0] > 2 * (zoomed[1] - zoomed[0])
        page.reload()
        _chart_ready(page)
        again = page.evaluate("() => [rexmonChart.scales.x.min, rexmonChart.scales.x.max]")
        assert again == zoomed
        # the page, the range form and the picture state the same range in the chosen zone
        assert page.locator("p.range").get_attribute("data-zone") == "America/Chicago"

        assert page.locator("select[data-zone-picker]").input_value() == "America/Chicago"
        src = page.locator("img.graph").get_attribute("src")
        assert f"start={int(zoomed[0])}" in src and "tz=America/Chicago" in unquote(src)
        assert page.locator("img.graph").evaluate("img => img.complete && img.naturalWidth > 0")
    finally:
        context.close()


def test_zone_picker_offers_utc_the_site_and_the_browser(
    chromium: Any, make_site: Callable[..., Site], live_server: Callable[[Any], Any]
) -> None:
    site = make_site()
    cfg = site.config.path.read_text(encoding="utf-8").replace(
        "[web]\n", '[web]\nzone = "Europe/Zurich"\n', 1
    )
    site.config.path.write_text(cfg, encoding="utf-8")
    from web import create_app

    url = live_server(create_app(load(site.config.path), clock=lambda: float(NOW))).url
    context, page = _page(chromium, 1400, timezone_id="Asia/Tokyo")
    try:
        page.goto(url + "/graph/load/load?period=day")
        options = page.locator("select[data-zone-picker] option").evaluate_all("os => os.map(o => o.value)")
        assert options == ["UTC", "Europe/Zurich", "Asia/Tokyo"]
        assert page.locator("p.range").get_attribute("data-zone") == "UTC"
        page.select_option("select[data-zone-picker]", "Asia/Tokyo")
        page.wait_for_url("**tz=Asia%2FTokyo**")
        assert page.locator("p.range").inner_text().endswith("JST")
        assert "tz=Asia/Tokyo" in unquote(page.locator("img.graph").get_attribute("src"))
    finally:
        context.close()


@pytest.fixture
def two_servers(write_config: Callable[..., Path], tmp_path: Path) -> Iterator[list[str]]:
    """Two real ``rexmon web`` processes on one archive, one under TZ=America/Chicago, one under TZ=UTC;
    each with its own image cache, so neither serves the other's picture."""
    fill_archive(tmp_path / "rrd").close()
    procs, urls, logs = [], [], []
    for tz in ("America/Chicago", "UTC"):
        path = write_config(f'[web]\ngraph_cache_dir = "{tmp_path / ("graphs-" + tz.replace("/", "-"))}"\n')
        mine = tmp_path / f"rexmon-{tz.replace('/', '-')}.toml"
        mine.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        upgrade(load(mine).database_url)
        port = free_port()
        rexmon = str(Path(sys.executable).parent / "rexmon")
        log = (tmp_path / f"web-{port}.log").open("wb")
        env = {**__import__("os").environ, "TZ": tz}
        argv = [rexmon, "--config", str(mine), "web", "--listen", f"127.0.0.1:{port}"]
        procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env))
        urls.append(f"http://127.0.0.1:{port}")
        logs.append(log)
    try:
        for u, p in zip(urls, procs, strict=True):
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(u + "/api/metrics", timeout=10).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or p.poll() is not None:
                        raise
                    time.sleep(0.2)
        yield urls
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        for log in logs:
            log.close()


def test_same_png_under_any_server_tz_for_the_same_url_and_zone(
    chromium: Any, two_servers: list[str], tmp_path: Path
) -> None:
    query = f"start={NOW - 6 * 3600}&end={NOW}"
    images: dict[tuple[str, str], bytes] = {}
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        for server in two_servers:
            for zone in ("Europe/Zurich", "UTC"):
                page.goto(f"{server}/graph/load/load?{query}&tz={zone}")
                src = page.locator("img.graph").get_attribute("src")
                resp = context.request.get(server + src)
                assert resp.status == 200 and resp.headers["content-type"] == "image/png"
                images[(server, zone)] = resp.body()
    finally:
        context.close()
    chicago, utc = two_servers
    assert images[(chicago, "Europe/Zurich")] == images[(utc, "Europe/Zurich")]
    assert images[(chicago, "UTC")] == images[(utc, "UTC")]
    assert images[(utc, "UTC")] != images[(utc, "Europe/Zurich")]  # the zone does move the time axis
    for tz in ("America-Chicago", "UTC"):  # each server drew its own pictures, into its own cache
        assert len(list((tmp_path / f"graphs-{tz}").glob("*/*.png"))) == 2


@pytest.mark.parametrize("width", WIDTHS)
def test_acknowledge_and_end_a_downtime_through_the_pages(
    chromium: Any, browser_site: tuple[Site, str], width: int
) -> None:
    site, url = browser_site
    set_states(site)
    body = {"scope": ["load/*"], "start": str(NOW - 3600), "end": str(NOW + 3600), "reason": "kernel update"}
    with site.client() as c:
        from tests.web.conftest import basic

        did = c.post("/api/downtimes", json=body, headers=basic()).get_json()["id"]
    context, page = _page(chromium, width, http_credentials={"username": USER, "password": PASSWORD})
    try:  # "Sign in" as a person would: the browser sends the credentials after the login's 401
        page.goto(url + "/login?next=/graph/df/_dev_sda1?period=day")
        page.wait_for_url("**/graph/df/_dev_sda1?period=day")
        page.fill("#ack-comment", "disk ordered <b>INC-7</b>")
        page.click(".ack-form button[type=submit]")
        page.wait_for_url("**/graph/df/_dev_sda1?period=day#ack")
        assert page.locator(".ack-comment").inner_text().endswith("disk ordered <b>INC-7</b>")
        assert page.locator("h1 svg").first.get_attribute("aria-label") == "acknowledged"
        # the overview's tooltip of the metric carries the comment too
        page.goto(url + "/")
        title = page.locator('li.metric[data-id="df/_dev_sda1"] a').first.get_attribute("title")
        assert title.endswith("; acknowledged: disk ordered <b>INC-7</b>"), title
        page.goto(url + "/graph/df/_dev_sda1?period=day")
        history = page.locator("#history tbody tr").first.inner_text()
        assert "acknowledged by alice" in history and "disk ordered <b>INC-7</b>" in history
        page.goto(url + f"/downtimes/{did}")
        assert page.locator(".phase").inner_text() == "active"
        page.click("form[action$='/end'] button[type=submit]")
        page.wait_for_url(f"**/downtimes/{did}")
        assert page.locator(".phase").inner_text() == "past"
        assert "end" in page.locator("table.audit").inner_text()
        page.screenshot(path=str(site.tmp / f"ended-{width}.png"), full_page=True)
    finally:
        context.close()


def test_anonymous_visitors_see_how_to_sign_in(chromium: Any, browser_site: tuple[Site, str]) -> None:
    _, url = browser_site
    context, page = _page(chromium, 400)
    try:
        page.goto(url + "/downtimes")
        hint = page.locator(".signin-hint")
        assert hint.is_visible() and hint.inner_text() == "Sign in to file a downtime"
        page.goto(url + "/graph/load/load")
        assert page.locator(".signin-hint").is_visible()
        assert page.locator(".ack-form").count() == 0
    finally:
        context.close()


@pytest.mark.parametrize(
    "path",
    [
        "/graph/df/_dev_sda1?period=day",
        f"/graph/{BIG}?period=week",
        "/",
        "/graph/condor",
        "/graph/net",
        "/downtimes",
        "/downtimes/new",
    ],
)
def test_no_horizontal_scroll_at_400_px(chromium: Any, browser_site: tuple[Site, str], path: str) -> None:
    site, url = browser_site
    set_states(site)
    context, page = _page(chromium, 400, http_credentials={"username": USER, "password": PASSWORD})
    try:
        page.goto(url + "/login?next=" + path)
        if path.startswith("/graph/") and path.count("/") > 2:
            _chart_ready(page)
        page.wait_for_load_state("networkidle")
        sizes = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert sizes[0] <= sizes[1], f"{path}: {sizes[0]} px wide in a {sizes[1]} px window"
        wide = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                 .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1
                              && !e.closest('.table-scroll, table'))
                 .map(e => e.tagName + '.' + e.className)"""
        )
        assert wide == [], wide
    finally:
        context.close()


def test_keyboard_reaches_the_graph_controls(chromium: Any, browser_site: tuple[Site, str]) -> None:
    _, url = browser_site
    context, page = _page(chromium, 1400)
    try:
        page.goto(url + "/graph/load/load?period=day")
        _chart_ready(page)
        reached = set()
        for _ in range(60):
            page.keyboard.press("Tab")
            reached.add(
                page.evaluate(
                    "() => document.activeElement.name || document.activeElement.textContent.trim()"
                )
            )
        assert {"zoom in", "zoom out", "◀ earlier", "later ▶", "tz", "show"} <= reached, reached
        page.locator("[data-zoom='0.5']").focus()
        before = page.evaluate("() => rexmonChart.scales.x.max - rexmonChart.scales.x.min")
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => rexmonChart.scales.x.max - rexmonChart.scales.x.min < {before} * 0.6")
    finally:
        context.close()


def test_the_time_axis_is_in_the_page_zone(chromium: Any, browser_site: tuple[Site, str]) -> None:
    _, url = browser_site
    context, page = _page(chromium, 1400, timezone_id="Asia/Tokyo")  # the browser's own zone must not matter
    try:
        ticks = {}
        for zone in ("UTC", "America/Chicago"):
            page.goto(url + f"/graph/load/load?period=day&tz={zone}")
            _chart_ready(page)
            page.wait_for_function("() => document.getElementById('chart').dataset.xTicks")
            ticks[zone] = json.loads(page.locator("#chart").get_attribute("data-x-ticks"))
        hours = {z: [int(t[:2]) for t in ts] for z, ts in ticks.items()}
        assert len(hours["UTC"]) == len(hours["America/Chicago"]) >= 4, ticks
        # NOW is in November: Chicago is UTC-6, so every label reads 6 hours earlier
        assert [(h - 6) % 24 for h in hours["UTC"]] == hours["America/Chicago"], ticks
        assert all(len(t.split("\n")[0]) == 5 and t[2] == ":" for t in ticks["UTC"]), ticks  # 24 h "HH:MM"
    finally:
        context.close()

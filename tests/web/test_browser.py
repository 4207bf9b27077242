"""The pages in a real headless Chromium: icons, problem ordering, zooming a graph, filing a downtime."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.web.conftest import EXPECTED_ICON, PASSWORD, USER, Site, set_states


@pytest.fixture
def browser_site(make_site: Callable[..., Site], live_server: Callable[[Any], Any]) -> tuple[Site, str]:
    site = make_site()
    return site, live_server(site.app).url


def test_overview_icons_and_filter(chromium: Any, browser_site: tuple[Site, str]) -> None:
    site, url = browser_site
    page = chromium.new_page(viewport={"width": 1200, "height": 800})
    try:
        page.goto(url + "/")
        order = page.locator("section.slurper").evaluate_all("els => els.map(e => e.dataset.slurper)")
        # without alarm states nothing is judged, so nothing needs anyone: every slurper is folded
        assert order == sorted(order) and page.locator("section.slurper.folded").count() == len(order)
        page.click('.count[data-state="unjudged"]')  # the state filter runs on the server
        page.wait_for_selector('li.metric[data-id="old/temperature"]')
        icon = page.locator('li.metric[data-id="old/temperature"] svg').first
        assert icon.get_attribute("aria-label") == "unjudged" and icon.is_visible()
        assert "state=unjudged" in page.url
        page.screenshot(path=str(site.tmp / "overview-filtered.png"), full_page=True)
    finally:
        page.close()


def test_overview_shows_icons_problems_first(chromium: Any, browser_site: tuple[Site, str]) -> None:
    site, url = browser_site
    set_states(site)
    page = chromium.new_page(viewport={"width": 1200, "height": 800})
    try:
        page.goto(url + "/")
        order = page.locator("section.slurper").evaluate_all("els => els.map(e => e.dataset.slurper)")
        assert order[:4] == ["df", "load", "condor", "old"]  # CRITICAL, WARNING, OK, unjudged
        attention = page.locator("section.attention li.metric").evaluate_all(
            "els => els.map(e => e.dataset.id)"
        )
        assert attention == ["df/_dev_sda1", "load/load"]
        icon = page.locator('li[data-id="df/_dev_sda1"] svg').first
        assert icon.get_attribute("aria-label") == EXPECTED_ICON["df/_dev_sda1"]
        page.fill("#console-q", "schedd")
        page.wait_for_function("() => document.querySelectorAll('section.slurper').length === 1")
        assert page.locator("section.slurper").evaluate_all("els => els.map(e => e.dataset.slurper)") == [
            "condor"
        ]
        page.fill("#console-q", "")
        page.wait_for_function("() => document.querySelectorAll('section.slurper').length > 1")
        page.screenshot(path=str(site.tmp / "overview.png"), full_page=True)
    finally:
        page.close()


def test_graph_zoom_by_dragging(chromium: Any, browser_site: tuple[Site, str]) -> None:
    site, url = browser_site
    page = chromium.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(url + "/graph/load/load?period=day")
        page.wait_for_function("() => window.rexmonChart && document.getElementById('chart').dataset.xmin")
        before = page.evaluate("() => [rexmonChart.scales.x.min, rexmonChart.scales.x.max]")
        box = page.locator("#chart .u-over").bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] * 0.4, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=8)
        page.mouse.up()
        page.wait_for_function(
            f"() => rexmonChart.scales.x.max - rexmonChart.scales.x.min < {before[1] - before[0]} / 2"
        )
        after = page.evaluate("() => [rexmonChart.scales.x.min, rexmonChart.scales.x.max]")
        assert before[0] < after[0] < after[1] < before[1]
        assert page.locator("img.graph").evaluate("img => img.complete && img.naturalWidth > 0")
        page.screenshot(path=str(site.tmp / "graph.png"), full_page=True)
    finally:
        page.close()


def test_file_downtime_through_form(chromium: Any, browser_site: tuple[Site, str]) -> None:
    site, url = browser_site
    context = chromium.new_context(http_credentials={"username": USER, "password": PASSWORD})
    page = context.new_page()
    try:
        page.goto(url + "/downtimes/new")
        page.fill("textarea[name=scope]", "condor/schedd.s1.*")
        page.fill("input[name=start]", "now")
        page.fill("input[name=end]", "+2h")
        page.fill("input[name=reason]", "schedd upgrade <b>to 24.0</b>")
        page.click("button[value=preview]")
        assert page.locator(".preview h2").inner_text() == "This downtime covers 3 metrics"
        assert "condor/schedd.s1.held" in page.locator(".preview-list").inner_text()
        page.screenshot(path=str(site.tmp / "downtime-preview.png"), full_page=True)
        page.click("button[value=save]")
        page.wait_for_url("**/downtimes/*")
        assert page.locator("h1").inner_text().startswith("Downtime #")
        assert "schedd upgrade <b>to 24.0</b>" in page.locator("dl.fields").inner_text()
        assert USER in page.locator("dl.fields").inner_text()
        page.screenshot(path=str(site.tmp / "downtime.png"), full_page=True)
    finally:
        context.close()

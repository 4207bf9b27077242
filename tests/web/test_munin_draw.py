"""Munin's cdef and negative where values are drawn: the PNG (rrdtool CDEF) and the series JSON/CSV."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import pytest
import rrdtool

from alarms.catalogue import CatalogueWriter, MetricMeta, read
from alarms.observation import Observation
from downtime.db import make_engine
from rrd.archive import Update
from rrd.graph import GraphRenderer
from rrd.graphargs import GraphSpec, build_args
from tests.web.conftest import NOW, SPEC, STEP, Site
from web import rpn
from web.graphs import drawing

#: bytes per second as if_'s counters give them once rrdtool made them a rate (drawn as bits)
UP = lambda i: 1000.0 + 37 * (i % 11)  # noqa: E731
DOWN = lambda i: 5000.0 + 101 * (i % 7)  # noqa: E731
#: (cdef, negative) per metric as the munin slurper records them from Debian's if_ config output
SHAPES = {
    "if_eth0/up": ("up,8,*", "down"),
    "if_eth0/down": ("down,8,*", ""),
    "if_eth0/bad": ("bad,8,SIN", ""),
}


@pytest.fixture
def if_site(make_site: Callable[..., Site]) -> Site:
    site = make_site()
    minutes = 180
    start = NOW - minutes * STEP
    f = {"if_eth0/up": UP, "if_eth0/down": DOWN, "if_eth0/bad": UP}
    result = site.archive.write(
        [Update(mid, start + i * STEP, fn(i), SPEC) for mid, fn in f.items() for i in range(1, minutes + 1)]
    )
    assert not result.errors, result.errors
    obs = [
        Observation(mid, NOW, 1.0, unit="bits in (-) / out (+)", graph="if_eth0", cdef=c, negative=n)
        for mid, (c, n) in SHAPES.items()
    ]
    engine = make_engine(site.config.database_url)
    try:
        writer = CatalogueWriter(engine)
        with engine.begin() as conn:
            writer.written(writer.note(conn, obs, NOW))
    finally:
        engine.dispose()
    return site


def _raw(site: Site, mid: str) -> list[float | None]:
    return site.archive.fetch(mid, NOW - 3600, NOW).values


def test_series_json_and_csv_return_the_cdef_values(if_site: Site) -> None:
    client = if_site.client()
    got = client.get(f"/api/metrics/if_eth0/up/series?start={NOW - 3600}&end={NOW}").get_json()
    raw = _raw(if_site, "if_eth0/up")
    assert got["cdef"] == "up,8,*" and got["negative"] == "down"
    assert len(got["values"]) >= 59
    assert got["values"] == [None if v is None else v * 8 for v in raw[: len(got["values"])]]
    assert max(v for v in got["values"] if v is not None) == pytest.approx(8 * max(map(UP, range(11))))
    csv = client.get(f"/api/metrics/if_eth0/up/series.csv?start={NOW - 3600}&end={NOW}").get_data(
        as_text=True
    )
    first = csv.splitlines()[1].split(",")
    assert float(first[1]) == got["values"][0]


def test_a_refused_cdef_serves_the_raw_values_and_logs_why(
    if_site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="web.api"):
        resp = if_site.client().get(f"/api/metrics/if_eth0/bad/series?start={NOW - 3600}&end={NOW}")
    assert resp.status_code == 200
    got = resp.get_json()
    assert got["cdef"] == "" and got["values"] == _raw(if_site, "if_eth0/bad")[: len(got["values"])]
    assert "cdef of if_eth0/bad not applied, drawn raw" in caplog.text and "'SIN'" in caplog.text


def test_png_draws_the_cdef_and_mirrors_the_negative(if_site: Site) -> None:
    ids = ("if_eth0/down", "if_eth0/up")
    meta = _meta(if_site)
    cdefs, negated = drawing(ids, meta)
    assert cdefs == ("v0,8,*", "v1,8,*") and negated == (True, False)
    spec = GraphSpec(ids, NOW - 3600, NOW, 600, 200, cdefs=cdefs, negated=negated)
    args = build_args(spec, [if_site.archive.path(m) for m in ids])
    # what rrdtool computed for each drawn line, read back through PRINT
    probes = ["VDEF:pd=n0,MINIMUM", "PRINT:pd:%.3lf", "VDEF:pu=c1,MAXIMUM", "PRINT:pu:%.3lf"]
    info = rrdtool.graphv("-", *args, *probes)
    down_max = max(v for v in _raw(if_site, "if_eth0/down") if v is not None)
    up_max = max(v for v in _raw(if_site, "if_eth0/up") if v is not None)
    assert float(info["print[0]"]) == pytest.approx(-8 * down_max, rel=1e-6)
    assert float(info["print[1]"]) == pytest.approx(8 * up_max, rel=1e-6)
    assert info["value_min"] <= -8 * down_max  # the axis reaches below zero for the mirrored line
    # the drawn image itself through the renderer and the web
    out = GraphRenderer(if_site.archive).render(spec, use_cache=False)
    assert out.info["value_min"] <= -8 * down_max and out.info["value_max"] >= 8 * up_max
    resp = if_site.client().get("/img/if_eth0.png?group=if_eth0&period=hour")
    assert resp.status_code == 200 and resp.data[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_refused_cdef_draws_the_raw_line_and_the_page_still_works(
    if_site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="web.graphs"):
        cdefs, negated = drawing(("if_eth0/bad",), _meta(if_site))
    assert cdefs == ("",) and negated == (False,)
    assert "cdef of if_eth0/bad not applied, drawn raw" in caplog.text
    # a cdef naming a field outside the graph is drawn raw too
    cdefs, negated = drawing(("if_eth0/up",), _meta(if_site))
    assert cdefs == ("v0,8,*",) and negated == (False,)
    client = if_site.client()
    assert client.get("/img/if_eth0/bad.png?period=hour").status_code == 200
    assert client.get("/graph/if_eth0/bad").status_code == 200


def _meta(site: Site) -> dict[str, MetricMeta]:
    engine = make_engine(site.config.database_url)
    try:
        with engine.connect() as conn:
            return read(conn)
    finally:
        engine.dispose()


def test_uplot_draws_the_cdef_and_the_negative_mirrored(
    chromium: Any, if_site: Site, live_server: Callable[[Any], Any]
) -> None:
    url = live_server(if_site.app).url
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.goto(url + f"/graph/if_eth0/up?start={NOW - 3600}&end={NOW}")
        page.wait_for_function("() => window.rexmonChart && document.getElementById('chart').dataset.yTicks")
        data = page.evaluate("() => rexmonChart.data.map(s => Array.from(s))")
        assert len(data) == 3 and page.locator("#chart").get_attribute("data-negative") == "down"
        n = len(data[0])
        up, down = _raw(if_site, "if_eth0/up")[:n], _raw(if_site, "if_eth0/down")[:n]
        assert data[1] == [None if v is None else 8 * v for v in up]
        assert data[2] == [None if v is None else -8 * v for v in down]
        # the mirrored line is below the axis: the y scale reaches down to it
        assert page.evaluate("() => rexmonChart.scales.y.min") <= min(v for v in data[2] if v is not None)
        labels = page.locator("#chart .u-legend .u-series .u-label").all_inner_texts()
        assert "down (below the axis)" in labels
    finally:
        context.close()


def test_last_value_is_shown_with_its_cdef(if_site: Site, caplog: pytest.LogCaptureFixture) -> None:
    rpn._own_tokens.cache_clear()  # the refusal is logged once per expression and process
    with caplog.at_level(logging.WARNING, logger="web.rpn"):
        rows = {r["id"]: r for r in if_site.client().get("/api/metrics?match=if_eth0/*").get_json()}
    last_up = if_site.archive.last("if_eth0/up")
    last_bad = if_site.archive.last("if_eth0/bad")
    assert last_up is not None and last_bad is not None
    assert rows["if_eth0/up"]["value"] == pytest.approx(8 * last_up[1])
    assert rows["if_eth0/bad"]["value"] == pytest.approx(last_bad[1])  # refused: shown as archived
    assert "cdef of field bad shown raw" in caplog.text


def test_iec_prefix_of_a_base_1024_png_follows_the_drawn_values(if_site: Site) -> None:
    up_max = max(v for v in _raw(if_site, "if_eth0/up") if v is not None)
    assert 1024 < up_max < 1024**2 < 1024 * up_max  # raw: KiB; drawn (x1024): MiB
    renderer = GraphRenderer(if_site.archive)
    common: dict[str, Any] = {"unit": "B", "base": 1024}
    drawn = renderer.render(
        GraphSpec(("if_eth0/up",), NOW - 3600, NOW, cdefs=("v0,1024,*",), **common), use_cache=False
    )
    raw = renderer.render(GraphSpec(("if_eth0/up",), NOW - 3600, NOW, **common), use_cache=False)
    legends = {
        k: [str(v) for n, v in r.info.items() if n.startswith("legend[")]
        for k, r in (("d", drawn), ("r", raw))
    }
    assert f"max {up_max / 1024:8.2f} MiB" in legends["d"], legends
    assert f"max {up_max / 1024:8.2f} KiB" in legends["r"], legends


def test_metric_png_draws_the_negative_partner_below_the_axis(if_site: Site) -> None:
    from PIL import Image

    client = if_site.client()
    # the lines' colours (rrd.graphargs.PALETTE): the metric's own, then its partner's
    blue, green = (0x1F, 0x77, 0xB4), (0x2C, 0xA0, 0x2C)

    def rows_of(path: str, color: tuple[int, int, int]) -> list[int]:
        resp = client.get(path)
        assert resp.status_code == 200 and resp.mimetype == "image/png"
        img = Image.open(io.BytesIO(resp.data)).convert("RGB")
        return sorted(y for x in range(img.width) for y in range(img.height) if img.getpixel((x, y)) == color)

    up_png = "/img/if_eth0/up.png?period=hour&size=large"
    partner, own = rows_of(up_png, green), rows_of(up_png, blue)
    assert len(partner) > 500  # a line across the plot, not just a legend swatch
    # the partner runs below the metric's own line (pixel rows grow downwards): it is drawn as -8 x down
    assert partner[len(partner) // 2] > own[len(own) // 2] + 100
    assert rows_of("/img/if_eth0/down.png?period=hour&size=large", green) == []  # down names no partner

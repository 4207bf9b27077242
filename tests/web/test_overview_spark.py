"""The overview's sparklines (issue #15 item 5): every group row and every folded slurper carries one,
with a URL the page fetches only when the row is seen; the endpoint draws a group's known series."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from rrd.archive import Update
from tests.web.conftest import NOW, SPEC, Site
from web.spark import HEIGHT, WIDTH, coarse

#: a group "spark/ramp" of three series over the last day: a rising ramp, a flat line, one with a gap
DAY = 1440
RAMP: dict[str, Callable[[int], float | None]] = {
    "spark/ramp.flat": lambda i: 720.0,
    "spark/ramp.gappy": lambda i: None if 300 <= i < 660 else 100.0,
    "spark/ramp.up": lambda i: float(i),
}


@pytest.fixture
def ramp_site(site: Site) -> Site:
    start = NOW - DAY * 60
    ups = [Update(m, start + i * 60, f(i), SPEC) for m, f in RAMP.items() for i in range(1, DAY + 1)]
    result = site.archive.write([u for u in ups if u.value is not None])
    assert not result.errors, result.errors
    return site


def _imgs(html: str) -> list[dict[str, str]]:
    return [
        {k: unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag)}
        for tag in re.findall(r'<img class="spark"[^>]*>', html)
    ]


def test_every_group_row_and_folded_slurper_has_its_sparkline(ramp_site: Site) -> None:
    client = ramp_site.client()
    html = client.get("/?q=/").get_data(as_text=True)  # a filter opens every slurper it keeps
    groups = re.findall(
        r'<li class="group" data-key="([^"]*)"[^>]*><details[^>]*><summary>(.*?)</summary>', html, re.S
    )
    assert {unescape(k) for k, _ in groups} == {"condor/schedd.s1", "df/", "load/", "old/", "spark/ramp"}
    for key, head in groups:
        (img,) = _imgs(head)
        slurper, _, graph = unescape(key).partition("/")
        url = urlsplit(img["data-src"])
        assert url.path == f"/overview/spark/{slurper}.svg" and parse_qs(url.query, True) == {
            "group": [graph]
        }
        assert "src" not in img  # nothing fetched until the row is seen
        assert img["alt"] == f"last 24 hours of {slurper}/{graph or '(ungrouped)'}"
        assert (img["width"], img["height"]) == ("120", "24")
    # without a filter, slurpers with nothing that needs someone are one folded line each
    html = client.get("/").get_data(as_text=True)
    folded = re.findall(
        r'<section class="slurper folded" data-slurper="([^"]*)"><details><summary>(.*?)</summary>',
        html,
        re.S,
    )
    assert {s for s, _ in folded} >= {"spark", "condor"}
    for slurper, head in folded:
        (img,) = _imgs(head)
        assert urlsplit(img["data-src"]).path == f"/overview/spark/{slurper}.svg"
    spark = next(_imgs(head)[0] for s, head in folded if s == "spark")
    assert spark["data-src"] == "/overview/spark/spark.svg?group=ramp"
    # the folded slurper's group lines, fetched when it is opened, carry theirs too
    lines = client.get("/overview/slurper/condor").get_data(as_text=True)
    assert [i["data-src"] for i in _imgs(lines)] == ["/overview/spark/condor.svg?group=schedd.s1"]


def _points(d: str) -> list[list[tuple[float, float]]]:
    """An SVG path's runs ("M" starts one) as lists of (x, y)."""
    runs: list[list[tuple[float, float]]] = []
    for cmd, x, y in re.findall(r"([ML])([\d.]+) ([\d.]+)", d):
        if cmd == "M":
            runs.append([])
        runs[-1].append((float(x), float(y)))
    return runs


def test_the_sparkline_of_a_known_group_draws_its_series_on_one_scale(ramp_site: Site) -> None:
    resp = ramp_site.client().get("/overview/spark/spark.svg?group=ramp")
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"
    assert resp.headers["Cache-Control"] == "private, max-age=300"
    svg = resp.get_data(as_text=True)
    assert f'width="{WIDTH}" height="{HEIGHT}"' in svg
    assert (
        "<title>spark/ramp: last 24 hours</title>" in svg and 'aria-label="spark/ramp: last 24 hours"' in svg
    )
    flat, gappy, up = (_points(d) for d in re.findall(r'<path d="([^"]*)"', svg))  # by name
    # the ramp rises from the bottom to the top: a shared scale from its 0..1440 (y grows downwards)
    (line,) = up
    ys = [y for _, y in line]
    assert ys == sorted(ys, reverse=True) and ys[0] > HEIGHT - 4 and ys[-1] < 3
    assert len(line) >= 46 and line[0][0] < 3 and line[-1][0] > WIDTH - 3
    # 720 on that scale sits in the middle; 100 near the bottom, broken where nothing was archived
    assert all(abs(y - HEIGHT / 2) < 2 for run in flat for _, y in run)
    assert len(gappy) == 2 and all(HEIGHT - 5 < y < HEIGHT - 1 for run in gappy for _, y in run)
    gap = gappy[1][0][0] - gappy[0][-1][0]
    assert gap > WIDTH * 300 / DAY, gap  # six hours missing: a quarter of the width without a line


def test_a_sparkline_of_a_day_without_data_says_so(site: Site) -> None:
    svg = site.client().get("/overview/spark/old.svg?group=").get_data(as_text=True)
    assert "<path" not in svg and 'stroke-dasharray="3 3"' in svg  # stopped a day ago: no line at zero
    assert "old/(ungrouped): last 24 hours" in svg


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        ("/overview/spark/spark.svg", 400, "needs ?group="),
        ("/overview/spark/spark.svg?group=nope", 404, "no group &#39;nope&#39; of slurper &#39;spark&#39;"),
        ("/overview/spark/nobody.svg?group=ramp", 404, "no group &#39;ramp&#39; of slurper &#39;nobody&#39;"),
    ],
)
def test_a_bad_sparkline_request_names_what_was_wrong(
    ramp_site: Site, url: str, status: int, says: str
) -> None:
    resp = ramp_site.client().get(url)
    assert resp.status_code == status and says in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    ("values", "points", "drawn"),
    [
        ([1.0, 2.0, 3.0], 4, [1.0, 2.0, 3.0]),  # coarse enough already
        ([1.0, 2.0, 3.0, 4.0], 2, [1.5, 3.5]),
        ([None, None, 1.0, 3.0], 2, [None, 2.0]),  # a run with nothing known stays a gap
        ([1.0, None, float("nan"), 5.0, 6.0], 2, [1.0, 5.5]),
    ],
)
def test_a_fine_series_is_averaged_down_to_the_sparklines_points(
    values: list[float | None], points: int, drawn: list[float | None]
) -> None:
    assert coarse(values, points) == drawn

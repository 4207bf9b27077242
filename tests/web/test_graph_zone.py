"""Graph images in the zone the page states, with the metric's unit: rrd.graph and the image routes."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from rrd.archive import Update
from rrd.graph import DRAWER, GraphRenderer
from rrd.graphargs import GraphError, GraphSpec, build_args, check_zone, iec_exponent
from tests.web.conftest import NOW, SPEC, Site, fill_archive


@pytest.mark.parametrize("zone", ["/etc/passwd", "../../etc/passwd", "Not/AZone", "UTC:x", "", "x" * 80])
def test_a_zone_must_be_an_iana_name(zone: str) -> None:
    with pytest.raises(GraphError, match="is not a time zone"):
        check_zone(zone)
    with pytest.raises(GraphError, match="is not a time zone"):
        GraphSpec(("load/load",), NOW - 60, NOW, zone=zone)


def test_the_zone_moves_the_axis_and_is_part_of_the_cache_key(tmp_path: Path) -> None:
    archive = fill_archive(tmp_path / "rrd")
    renderer = GraphRenderer(archive, tmp_path / "cache")
    images = {}
    for zone in ("UTC", "America/Chicago", "UTC"):
        out = renderer.render(GraphSpec(("load/load",), NOW - 6 * 3600, NOW, zone=zone))
        images.setdefault(zone, []).append(out)
    assert images["UTC"][0].data != images["America/Chicago"][0].data
    assert [o.cached for o in images["UTC"]] == [False, True]
    assert images["America/Chicago"][0].cached is False
    assert len(list((tmp_path / "cache").glob("*/*.png"))) == 2


def test_the_server_process_tz_does_not_reach_the_image(tmp_path: Path) -> None:
    archive = fill_archive(tmp_path / "rrd")
    spec = GraphSpec(("load/load",), NOW - 6 * 3600, NOW, zone="Europe/Zurich")
    first = GraphRenderer(archive).render(spec, use_cache=False).data
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/Chicago"  # the web server's own zone must not matter
    time.tzset()
    try:
        second = GraphRenderer(archive).render(spec, use_cache=False).data
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()
    assert first == second


@pytest.mark.parametrize(
    ("metric", "unit", "base", "axis", "shown", "scale"),
    [
        # IEC: drawn in the power of 1024 of the largest value, the prefix written as the page writes it
        ("mem/used", "B", 1024, "MiB", ["MiB"], 1024**2),
        ("load/load", "B", 1024, "B", ["B"], 1),
        # SI: rrdtool's own prefixes
        ("mem/used", "B/s", 1000, "B/s", ["MB/s"], 1e6),
        ("load/load", "%", 1000, "%", ["%"], 1),
        ("load/load", "", 1000, None, [], 1),
    ],
)
def test_the_unit_labels_the_axis_and_the_legend(
    tmp_path: Path, metric: str, unit: str, base: int, axis: str | None, shown: list[str], scale: float
) -> None:
    archive = fill_archive(tmp_path / "rrd")
    start = NOW - 3600
    archive.write([Update("mem/used", start + i * 60, 7.3e7 + i * 6e5, SPEC) for i in range(1, 61)])
    spec = GraphSpec((metric,), start, NOW, unit=unit, base=base)
    out = GraphRenderer(archive).render(spec, use_cache=False)
    legends = [str(v) for k, v in out.info.items() if k.startswith("legend[")]
    avg = next(text.split() for text in legends if text.startswith("avg"))
    values = [v for v in archive.fetch(metric, start, NOW).values if v is not None]
    mean = sum(values) / len(values)
    assert avg[2:] == shown and abs(float(avg[1]) * scale - mean) <= 0.03 * mean, (legends, mean)
    iec = iec_exponent(max(values)) if base == 1024 else None
    args = build_args(spec, [archive.path(metric)], iec)
    label = args[args.index("--vertical-label") + 1] if "--vertical-label" in args else None
    assert label == axis and args[args.index("--base") + 1] == str(base)


def test_iec_exponent() -> None:
    assert [iec_exponent(v) for v in (0, 1023, 1024, 7.3e7, 2**40, 2**70)] == [0, 0, 1, 2, 4, 6]


def test_bad_base_is_refused() -> None:
    with pytest.raises(GraphError, match="base 1200"):
        GraphSpec(("load/load",), NOW - 60, NOW, base=1200)


def test_image_route_takes_the_zone_from_the_url(site: Site) -> None:
    client = site.client()
    q = f"start={NOW - 6 * 3600}&end={NOW}"
    utc = client.get(f"/img/load/load.png?{q}")
    zurich = client.get(f"/img/load/load.png?{q}&tz=Europe/Zurich")
    assert utc.status_code == zurich.status_code == 200
    assert utc.data != zurich.data
    bad = client.get(f"/img/load/load.png?{q}&tz=/etc/passwd")
    assert bad.status_code == 400 and bad.get_json() is None and "tz" in bad.get_data(as_text=True)
    page = client.get("/graph/load/load?period=day&tz=Europe/Zurich").get_data(as_text=True)
    assert "tz=Europe/Zurich" in page and "CET" in page  # the range is stated in the chosen zone
    assert client.get("/graph/load/load?tz=Mars/Olympus").status_code == 400


def test_group_graph_threshold_lines_name_their_series(site: Site) -> None:
    from tests.web.conftest import set_states
    from web.graphs import series_rules

    set_states(site)  # df/_dev_sda1: warning ~:80, critical ~:90; df/_dev_sdb1 has no rule
    rows = [
        r
        for s in site.app.extensions["rexmon"]["monitor"].overview(["df/_dev_sda1", "df/_dev_sdb1"]).slurpers
        for r in s.metrics
    ]
    assert [(r.label, r.value) for r in series_rules(rows)] == [
        ("_dev_sda1 warning ~:80", 80.0),
        ("_dev_sda1 critical ~:90", 90.0),
    ]
    alone = [r for r in rows if r.metric_id == "df/_dev_sda1"]
    assert [r.label for r in series_rules(alone)] == ["warning ~:80", "critical ~:90"]
    r = site.client().get("/img/df.png?period=day")  # both series, one unit: one image with the lines
    assert r.status_code == 200 and r.data.startswith(b"\x89PNG")


def test_a_crashed_drawing_process_fails_one_image_then_drawing_resumes(tmp_path: Path) -> None:
    import multiprocessing
    import signal

    archive = fill_archive(tmp_path / "rrd")
    spec = GraphSpec(("load/load",), NOW - 3600, NOW)
    renderer = GraphRenderer(archive)
    DRAWER.close()  # a pool of its own: other tests' children (a server shutting down) are not killed
    others = set(multiprocessing.active_children())
    first = renderer.render(spec, use_cache=False).data
    children = [c for c in multiprocessing.active_children() if c not in others]
    assert children, "graphs are drawn in child processes"
    for child in children:  # what a SIGSEGV in librrd does to a drawing process
        os.kill(child.pid or 0, signal.SIGKILL)
        child.join(10)
    with pytest.raises(GraphError, match="drawing process died"):
        renderer.render(spec, use_cache=False)
    assert renderer.render(spec, use_cache=False).data == first


def test_a_declared_graph_key_draws_its_own_metrics(site: Site) -> None:
    """Munin's memory graph holds fields named active, free...: the graph key is not a name prefix."""
    from tests.web.test_browser_graphs import record_meta

    record_meta(site, {"df/_dev_sda1": ("%", 1000, "disk usage"), "df/_dev_sdb1": ("%", 1000, "disk usage")})
    client = site.client()
    page = client.get("/graph/df?period=day").get_data(as_text=True)
    assert 'id="g-disk usage"' in page
    src = re.search(r'<img class="graph" src="([^"]+)"', page)
    assert src and "group=disk+usage" in src.group(1)
    r = client.get(src.group(1).replace("&amp;", "&"))
    assert r.status_code == 200 and r.data.startswith(b"\x89PNG")
    assert client.get("/img/df.png?group=nothing&period=day").status_code == 404


def test_series_csv_and_json_carry_the_unit(site: Site) -> None:
    from tests.web.test_browser_graphs import record_meta

    record_meta(site, {"df/_dev_sdb1": ("%", 1000, "disk usage"), "load/load": ("bytes", 1024, "")})
    client = site.client()
    lines = client.get("/api/metrics/df/_dev_sdb1/series.csv?period=hour").get_data(as_text=True).splitlines()
    assert lines[0] == "time,df/_dev_sdb1,unit" and lines[-1] == f"{NOW},40.0,%"
    body = client.get("/api/metrics/load/load/series?period=hour").get_json()
    assert (body["unit"], body["base"]) == ("B", 1024)  # as the page writes it
    page = client.get("/graph/load/load").get_data(as_text=True)
    assert 'data-unit="B" data-base="1024"' in page

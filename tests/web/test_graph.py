"""rrd.graph against real rrdtool: downtime shading at the right pixels, escaping, the on-disk cache."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from rrd.archive import Archive, Update
from rrd.graph import GraphRenderer
from rrd.graphargs import Band, GraphError, GraphSpec, Rule, build_args, escape_text
from tests.web.conftest import NOW, SPEC, fill_archive

GREY_BAND = (223, 223, 223)  # #7f7f7f at alpha 0x40 over white


def _is_band(px: tuple[int, ...]) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(px[:3], GREY_BAND, strict=True))


def test_downtime_band_is_shaded_over_its_time_range(tmp_path: Path) -> None:
    archive = fill_archive(tmp_path / "rrd")
    start, end = NOW - 86400, NOW
    band = Band(NOW - 6 * 3600, NOW - 3 * 3600, "outage #1: disk swap by alice")
    spec = GraphSpec(("df/_dev_sdb1",), start, end, 720, 200, bands=(band,))
    out = GraphRenderer(archive).render(spec, use_cache=False)
    img = Image.open(io.BytesIO(out.data)).convert("RGB")
    left, width = out.info["graph_left"], out.info["graph_width"]
    t0, t1 = out.info["graph_start"], out.info["graph_end"]
    top, height = int(out.info["graph_top"]), int(out.info["graph_height"])

    def x_of(t: float) -> int:
        return int(left + (t - t0) * width / (t1 - t0))

    def row(y: int, a: float, b: float) -> list[tuple[int, ...]]:
        return [img.getpixel((x, y)) for x in range(x_of(a) + 2, x_of(b) - 2)]

    # a row without grid lines or the data line: plain white before the band
    y = next(
        y
        for y in range(top + 3, top + height - 3)
        if all(px == (255, 255, 255) for px in row(y, t0, band.start))
    )
    assert sum(map(_is_band, row(y, band.start, band.end))) / len(row(y, band.start, band.end)) > 0.9
    assert not any(map(_is_band, row(y, t0, band.start)))
    assert sum(map(_is_band, row(y, band.end, t1))) / len(row(y, band.end, t1)) < 0.05


def test_legend_text_is_escaped_and_drawn_verbatim(tmp_path: Path) -> None:
    archive = fill_archive(tmp_path / "rrd")
    reason = "a:b \\g 100% <script>alert(1)</script>"
    band = Band(NOW - 3600, NOW - 1800, reason)
    spec = GraphSpec(
        ("load/load",), NOW - 7200, NOW, fmt="SVG", bands=(band,), rules=(Rule(2.0, "warning ~:2"),)
    )
    args = build_args(spec, [archive.path("load/load")])
    assert any(a.startswith("AREA:dt0") and "a\\:b /g" in a for a in args)
    out = GraphRenderer(archive).render(spec, use_cache=False)
    assert out.data.startswith(b"<?xml")
    legends = [v for k, v in out.info.items() if k.startswith("legend[")]
    assert any("a:b /g 100% <script>" in str(v) for v in legends)
    assert escape_text("x:y\nz") == "x\\:y z"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric_ids": ("../etc/passwd",)}, "not a metric id"),
        ({"metric_ids": ("a/b:c",)}, "not a metric id"),
        ({"start": NOW, "end": NOW - 1}, "before end"),
        ({"width": 10}, "outside"),
        ({"fmt": "PDF"}, "format"),
    ],
)
def test_bad_specs_are_refused(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"metric_ids": ("load/load",), "start": NOW - 60, "end": NOW}
    with pytest.raises((GraphError, ValueError), match=message):
        GraphSpec(**{**base, **kwargs})  # type: ignore[arg-type]


def test_cache_is_reused_until_new_data(tmp_path: Path) -> None:
    archive = fill_archive(tmp_path / "rrd")
    renderer = GraphRenderer(archive, tmp_path / "cache", clock=lambda: float(NOW))
    spec = GraphSpec(("load/load",), NOW - 86400, NOW)
    first = renderer.render(spec)
    second = renderer.render(spec)
    assert (first.cached, second.cached) == (False, True)
    assert second.data == first.data
    assert len(list((tmp_path / "cache").glob("*/*.png"))) == 1
    Archive(tmp_path / "rrd", 60).write([Update("load/load", NOW + 60, 9.0, SPEC)])
    assert renderer.render(spec).cached is False
    assert renderer.prune(NOW + 10**9) == 2


def test_threshold_lines_are_drawn_even_outside_the_data_range(tmp_path: Path) -> None:
    archive = fill_archive(tmp_path / "rrd")  # df/_dev_sdb1 is 40 all day: the axis alone would not reach 15
    rules = (Rule(15.0, "warning ~:15", "warning"), Rule(60.0, "critical ~:60", "critical"))
    spec = GraphSpec(("df/_dev_sdb1",), NOW - 86400, NOW, 720, 200, rules=rules)
    out = GraphRenderer(archive).render(spec, use_cache=False)
    img = Image.open(io.BytesIO(out.data)).convert("RGB")
    left, width = int(out.info["graph_left"]), int(out.info["graph_width"])
    top, height = int(out.info["graph_top"]), int(out.info["graph_height"])
    lo, hi = float(out.info["value_min"]), float(out.info["value_max"])
    assert lo <= 15 and hi >= 60

    def share(value: float, color: tuple[int, int, int]) -> float:
        """The largest share of the plot's width in the line's colour, over the rows at ``value``."""
        y = top + (hi - value) * height / (hi - lo)
        rows = range(int(y) - 1, int(y) + 2)
        near = [
            sum(
                all(abs(a - b) <= 40 for a, b in zip(img.getpixel((x, r))[:3], color, strict=True))
                for x in range(left + 2, left + width - 2)
            )
            for r in rows
        ]
        return max(near) / (width - 4)

    assert share(15.0, (0xE0, 0xA0, 0x00)) > 0.9
    assert share(60.0, (0xD0, 0x00, 0x00)) > 0.9
    assert share(30.0, (0xE0, 0xA0, 0x00)) < 0.05


#: draws graphs from four threads at once; run in a child so that a crash of librrd fails the test
_THREADED = """
import sys, threading
from pathlib import Path
from rrd.archive import Archive
from rrd.graph import GraphRenderer
from rrd.graphargs import GraphSpec
from tests.web.conftest import NOW, SERIES

renderer = GraphRenderer(Archive(Path(sys.argv[1]), 60))
ids = sorted(SERIES)
sizes = []
start = threading.Barrier(4)  # the first graphs at the same instant: fonts are loaded then

def draw(k):
    start.wait()
    for i in range(40):
        spec = GraphSpec((ids[(k + i) % len(ids)],), NOW - 86400, NOW, 300 + i, 100 + k, title=f"t{k} {i}")
        sizes.append(len(renderer.render(spec, use_cache=False).data))

threads = [threading.Thread(target=draw, args=(k,)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(sizes), min(sizes))
"""


def test_graphs_drawn_from_many_threads_at_once(tmp_path: Path) -> None:
    """librrd's graph code is not thread-safe (Pango, fontconfig); waitress draws from its threads."""
    fill_archive(tmp_path / "rrd").close()
    root = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", _THREADED, str(tmp_path / "rrd")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,  # librrd can also deadlock in fontconfig instead of crashing
    )
    assert child.returncode == 0, f"exit {child.returncode}: {child.stderr[-1500:]}"
    count, smallest = map(int, child.stdout.split())
    assert count == 160 and smallest > 1000

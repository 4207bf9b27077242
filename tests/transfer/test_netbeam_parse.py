"""Netbeam parser on pond ``{name, columns, points}`` bodies, including every form of 'no data'."""

from __future__ import annotations

from pathlib import Path

import pytest

from slurpers.api import PayloadError
from slurpers.netbeam import Point, parse_series, resource_name

DATA = Path(__file__).resolve().parent.parent / "data" / "netbeam"


def text(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # ms -> s at the edge; the null point is skipped, not zero
        (
            "traffic.json",
            [
                Point(1585944000.0, "in", 5997486471.27),
                Point(1585944000.0, "out", 1893000268.8),
                Point(1585944030.0, "in", 6010023315.1),
                Point(1585944030.0, "out", 1901112334.0),
            ],
        ),
        # pond's own fixture: one direction only
        (
            "traffic_bnl_to_newy.json",
            [
                Point(1441051950.0, "in", 2998846524.2666664),
                Point(1441051980.0, "in", 2682032885.3333335),
                Point(1441052010.0, "in", 2753537586.9333334),
            ],
        ),
        (
            "traffic_newy_to_bnl.json",
            [
                Point(1441051950.0, "out", 22034579982.4),
                Point(1441051980.0, "out", 24783871443.2),
                Point(1441052010.0, "out", 26907368572.800003),
            ],
        ),
        # metadata keys ignored, columns found by name whatever their order
        (
            "traffic_metadata.json",
            [
                Point(1585944000.0, "out", 100.5),
                Point(1585944000.0, "in", 200.25),
                Point(1585944030.0, "in", 300.0),
            ],
        ),
        (
            "errors.json",
            [
                Point(1585944000.0, "in", 0.0),
                Point(1585944000.0, "out", 3.0),
                Point(1585944030.0, "in", 1.0),
                Point(1585944030.0, "out", 0.0),
            ],
        ),
        # no columns: esnet-collector's [ts, in, out]
        ("bare_points.json", [Point(1585944000.0, "in", 1.5), Point(1585944000.0, "out", 2.5)]),
        # every form of "no data" is no update, never zero
        ("empty.txt", []),
        ("no_points.json", []),
        ("empty_points.json", []),
        ("all_null.json", []),
    ],
)
def test_parse_series(name: str, expected: list[Point]) -> None:
    assert parse_series(text(name), name) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("garbage.html", "garbage.html: not JSON"),
        ("bad_row.json", r"points\[0\] does not have the 3 columns"),
        ("bad_value.json", r"points\[0\] in: expected a number, got 'fast'"),
        ("no_time_column.json", "'columns' must name 'time'"),
        ("esnet_snmp_old.json", "old ESnet SNMP API format"),
        # non-finite values are a malformed payload, not a point and not a gap
        ("bad_infinity.json", "bad_infinity.json: Infinity at line 1 column 63 is not a finite number"),
        ("bad_inf_string.json", r"bad_inf_string.json: points\[1\] in: 'inf' is not a finite number"),
    ],
)
def test_parse_series_rejects(name: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_series(text(name), name)


@pytest.mark.parametrize(
    ("resource", "name"),
    [
        ("devices/albq-asw1/interfaces/ae10", "albq-asw1.interfaces.ae10"),
        ("devices/albq-asw1/interfaces/gr-0%2F0%2F0", "albq-asw1.interfaces.gr-0_0_0"),
        ("devices/chic-cr55/saps/111-lag-1-2161", "chic-cr55.saps.111-lag-1-2161"),
    ],
)
def test_resource_names(resource: str, name: str) -> None:
    assert resource_name(resource) == name

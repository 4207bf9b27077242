"""Munin parsers on bad plugin output: every failure names the line, no overflowing number is a value."""

from __future__ import annotations

import pytest

from slurpers.api import PayloadError
from slurpers.munin import parse_config, parse_values
from tests.slurpers.conftest import DATA

D = DATA / "munin"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # 1e999 matches the number grammar but float() makes it inf: a bogus reading, refused
        (
            (D / "bad_overflow.fetch").read_text(encoding="utf-8"),
            "fetch line 1: value of x: '1e999' is not a finite",
        ),
        ("x.value 5\ny.value -1e999\n", "fetch line 2: value of y: '-1e999' is not a finite number"),
        ("x.value 1" + "0" * 400 + ":5\n", "fetch line 1: timestamp of x: .* is not a finite number"),
        # '²' passes str.isdigit(), then float() raised ValueError
        ((D / "bad_timestamp_unicode.fetch").read_text(encoding="utf-8"), "fetch line 1: bad timestamp"),
        ("x.value \u0663\n", "fetch line 1: value '\u0663' of x is not a number or U"),
    ],
)
def test_fetch_output_refuses_non_finite_numbers(text: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_values(text, "plug")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            (D / "bad_overflow.config").read_text(encoding="utf-8"),
            "config line 3: min: '1e999' is not a finite",
        ),
        ("x.label x\nx.max -1E400\n", "config line 2: max: '-1E400' is not a finite number"),
    ],
)
def test_config_output_refuses_non_finite_min_max(text: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_config(text, "plug")

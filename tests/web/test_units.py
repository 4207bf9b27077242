"""The web's one value formatter: SI and IEC prefixes, unit spellings, rates."""

from __future__ import annotations

import pytest

from web.units import UnitError, format_value, normalize, rate_unit


@pytest.mark.parametrize(
    ("value", "unit", "base", "text"),
    [
        (7.3e7, "B", 1024, "69.6 MiB"),
        # a unit with its own prefix (HTCondor's MiB) takes one prefix, never two ("512 kMiB")
        (512_000, "MiB", 1000, "500 GiB"),
        (2048, "KiB", 1000, "2.00 MiB"),
        (1500, "kB/s", 1024, "1.50 MB/s"),
        (0.5, "MiB", 1000, "512 KiB"),
        (7.3e7, "bytes", 1024, "69.6 MiB"),
        (7.24e7, "B/s", 1000, "72.4 MB/s"),
        (7.24e7, "bytes/s", 1000, "72.4 MB/s"),
        (7.24e7, "bytes per ${graph_period}", 1000, "72.4 MB/s"),
        (512_000, "", 1000, "512 k"),
        (1536, "B", 1024, "1.50 KiB"),
        (1e6, "", 1000, "1.00 M"),
        (999_970, "", 1000, "1.00 M"),
        (1023.9 * 1024, "B", 1024, "1.00 MiB"),
        (12, "jobs", 1000, "12 jobs"),
        (12.5, "jobs", 1000, "12.5 jobs"),
        (0, "B", 1024, "0 B"),
        (0.047, "", 1000, "0.047"),
        (0.0042, "s", 1000, "4.20 ms"),
        (97.5, "%", 1000, "97.5 %"),
        (2.5e6, "%", 1000, "2500000 %"),
        (-3.2e9, "B", 1000, "-3.20 GB"),
        (3200, "/s", 1000, "3.20 k/s"),
        (5, "/s", 1000, "5/s"),
        (None, "B", 1024, "U"),
        (float("inf"), "B", 1000, "inf B"),
        (2.0**70, "B", 1024, "1024 EiB"),
    ],
)
def test_format_value(value: float | None, unit: str, base: int, text: str) -> None:
    assert format_value(value, unit, base) == text


def test_a_base_other_than_1000_or_1024_is_an_error_naming_it() -> None:
    with pytest.raises(UnitError, match="unit base 1023: must be 1000"):
        format_value(1.0, "B", 1023)


@pytest.mark.parametrize(
    ("unit", "rate", "shown"),
    [
        ("B", "B/s", "B"),
        ("bytes", "B/s", "B"),
        ("", "/s", ""),
        ("B/s", "B/s", "B/s"),
        ("jobs", "jobs/s", "jobs"),
    ],
)
def test_rate_unit_and_normalize(unit: str, rate: str, shown: str) -> None:
    assert rate_unit(unit) == rate
    assert normalize(unit) == shown


def test_munin_base_1024_and_vlabel_reach_the_spec_and_read_as_iec() -> None:
    """The data side: Munin's memory plugin (as munin-run prints it) says --base 1024 and 'bytes'."""
    from pathlib import Path

    from slurpers.munin import parse_config

    data = Path(__file__).resolve().parents[1] / "data" / "munin"
    memory = parse_config((data / "memory.config").read_text(encoding="utf-8"), "memory")["memory"]
    load = parse_config((data / "load.config").read_text(encoding="utf-8"), "load")["load"]
    assert (memory.base, load.base) == (1024, 1000)
    assert format_value(7.3e7, memory.vlabel, memory.base) == "69.6 MiB"

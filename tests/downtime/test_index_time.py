"""Scope matching and time expressions (pure, no database)."""

from __future__ import annotations

import fnmatch
import random

import pytest

from downtime.index import DowntimeIndex
from downtime.timeparse import TimeParseError, parse_time
from downtime.windows import Window

NOW = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC


def w(i: int, *scope: str, start: float = 0, end: float = 10) -> Window:
    return Window(i, start, end, tuple(scope))


@pytest.mark.parametrize(
    ("pattern", "metric", "hit"),
    [
        ("condor-cms/*", "condor-cms/schedd.a.running", True),
        ("condor-cms/*", "condor-cmsx/jobs", False),
        ("fts/link.*FNAL*", "fts/link.CERN__FNAL.active", True),
        ("fts/link.*FNAL*", "fts/link.CERN__RAL.active", False),
        ("*/load", "host1/load", True),
        ("slurm/nodes.?.idle", "slurm/nodes.a.idle", True),
        ("slurm/partition.[ab].running", "slurm/partition.b.running", True),
        ("df/_dev_vda", "df/_dev_vda", True),
        ("df/_dev_vda", "df/_dev_vda2", False),
    ],
)
def test_globs_match_like_fnmatch(pattern: str, metric: str, hit: bool) -> None:
    idx = DowntimeIndex([w(1, pattern)])
    assert bool(idx.covering(metric, 5)) is hit is fnmatch.fnmatchcase(metric, pattern)


def test_index_agrees_with_a_naive_scan_on_random_scopes() -> None:
    rnd = random.Random(7)
    slurpers = ["condor", "condor-cms", "slurm", "fts", "df", "cpu"]
    metrics = [f"{rnd.choice(slurpers)}/m{rnd.randrange(50)}.{rnd.choice('xyz')}" for _ in range(500)]
    pats = ["*", "condor*", "condor/*", "*/m1*", "fts/m?.x", "slurm/m[12]*", "cpu/m3.z", "*.y"]
    windows = [w(i, *rnd.sample(pats, 2), start=i, end=i + 5) for i in range(40)]
    idx = DowntimeIndex(windows)
    for m in metrics:
        for t in (0, 3, 20, 44):
            naive = [
                x for x in windows if x.start <= t < x.end and any(fnmatch.fnmatchcase(m, p) for p in x.scope)
            ]
            assert idx.covering(m, t) == naive
        assert idx.overlapping(m, 10, 20) == [
            x
            for x in windows
            if x.start < 20 and x.end > 10 and any(fnmatch.fnmatchcase(m, p) for p in x.scope)
        ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("+30m", NOW + 1800),
        ("-1h", NOW - 3600),
        ("+1h30m", NOW + 5400),
        ("1780000123", 1780000123.0),
        ("2026-05-28T22:00Z", 1780005600.0),
        ("2026-05-28T22:00", 1780005600.0),  # naive: read in the given zone (UTC here)
        ("2026-05-28 22:00", 1780005600.0),
        ("2026-05-28T22:00+02:00", 1779998400.0),
        ("tomorrow 08:00", 1780041600.0),
        ("today 17:00", 1779987600.0),
        ("2h ago", NOW - 7200),  # the words of `alarms replay`, one grammar for every command
        ("90m ago", NOW - 5400),
        ("20260528", 1779926400.0),  # eight digits: an ISO 8601 basic date, not epoch seconds
        ("315532800", 315532800.0),  # 1980-01-01, the first time taken
    ],
)
def test_time_expressions(text: str, expected: float) -> None:
    assert parse_time(text, NOW, "UTC") == expected


def test_local_zone_is_used_for_naive_times() -> None:
    assert parse_time("2026-05-28T22:00", NOW, "Europe/Zurich") == 1780005600.0 - 7200


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", "empty time"),
        ("soon", "'soon' is not a time"),
        ("+forever", "'+forever' is not a time"),
        ("2026-13-01", "'2026-13-01' is not a time"),
        ("tomorrow 25:00", "25:00 is not a time of day"),
        ("2h", "'2h' is not a time"),  # a duration is not a time: +2h or 2h ago
        ("+99999999h", "'+99999999h' is out of range: times lie between 1980-01-01 and 9999-12-31"),
        ("1979-12-31T23:00Z", "'1979-12-31T23:00Z' is out of range"),
        ("99999999999999", "'99999999999999' is out of range"),
        ("now" + " " * 50 + "x" * 60, "longer than 100 characters"),
        ("2026-03-29T02:30", "2026-03-29 02:30 does not exist in"),  # skipped by the spring DST change
    ],
)
def test_bad_time_expressions_name_the_text(bad: str, message: str) -> None:
    with pytest.raises(TimeParseError) as err:
        parse_time(bad, NOW, "Europe/Zurich")
    assert message in str(err.value)

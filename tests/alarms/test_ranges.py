"""The Nagios range grammar, Munin translation and rule resolution, table-driven."""

from __future__ import annotations

import math

import pytest

from alarms.ranges import RangeError, from_munin, parse_range
from alarms.rules import RuleSet, rule_from_config
from rexmon.config import AlarmRule


@pytest.mark.parametrize(
    ("text", "alerting", "quiet"),
    [
        ("10", [-0.5, 10.01, 1e6], [0, 5, 10]),
        ("10:", [9.99, -1], [10, 1e9]),
        ("~:10", [10.5, 1e9], [-1e9, 10]),
        ("10:20", [9, 21], [10, 15, 20]),
        ("@10:20", [10, 15, 20], [9.9, 20.1]),
        ("-5:5", [-6, 6], [-5, 0, 5]),
        ("@~:0", [-1, 0], [0.1]),
        ("1e3", [1001, -1], [0, 1000]),
        ("2.5E-1:", [0.2], [0.25, 3]),
        (":10", [11, -1], [0, 10]),
        ("+5", [6], [5]),
        (".5", [0.6], [0.5]),
        (" 10 ", [11], [10]),
    ],
)
def test_range_alerts(text: str, alerting: list[float], quiet: list[float]) -> None:
    r = parse_range(text)
    assert [v for v in alerting if not r.alerts(v)] == []
    assert [v for v in quiet if r.alerts(v)] == []


@pytest.mark.parametrize(
    ("text", "start", "end", "inside"),
    [
        ("10", 0, 10, False),
        ("~:10", -math.inf, 10, False),
        ("10:", 10, math.inf, False),
        ("@1:2", 1, 2, True),
    ],
)
def test_range_bounds(text: str, start: float, end: float, inside: bool) -> None:
    r = parse_range(text)
    assert (r.start, r.end, r.inside, str(r)) == (start, end, inside, text)


@pytest.mark.parametrize("bad", ["", "@", ":", "@:", "abc", "10:5", "1:2:3", "~", "10x", "1e", "@@1", "~5"])
def test_bad_range_text_is_refused_with_the_text(bad: str) -> None:
    with pytest.raises(RangeError) as err:
        parse_range(bad)
    assert repr(bad) in str(err.value) or "start" in str(err.value)


@pytest.mark.parametrize(
    ("munin", "nagios"),
    [("80", "~:80"), (":80", "~:80"), ("70:", "70:"), ("70:80", "70:80"), ("-1:1", "-1:1")],
)
def test_munin_bare_number_means_above(munin: str, nagios: str) -> None:
    assert from_munin(munin) == nagios
    # Munin's bare "80" never alerts below zero, unlike Nagios' "80"
    assert not parse_range(from_munin("80")).alerts(-5) and parse_range("80").alerts(-5)


def _rule(match: str | list[str], **kw: object) -> AlarmRule:
    return AlarmRule(match=match if isinstance(match, list) else [match], **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("metric", "spec", "expected"),
    [
        ("df/root", (None, None), "late"),  # both rules match: the last one wins
        ("df/home", (None, None), "early"),
        ("cpu/user", ("~:50", None), "slurper default"),  # no rule: the slurper's default
        ("cpu/idle", (None, None), None),  # no rule, no default: no alarm
        ("load/load", ("~:1", "~:2"), "timing-only"),  # a rule without ranges keeps the defaults
        ("load/other", (None, None), None),  # ...and is no alarm without any
    ],
)
def test_rule_resolution_last_match_wins(
    metric: str, spec: tuple[str | None, str | None], expected: str
) -> None:
    rules = RuleSet.from_config(
        [
            _rule("df/*", warning="~:80", name="early"),
            _rule(["x/y", "df/r*"], warning="~:90", name="late"),
            _rule("load/*", renotify=60, name="timing-only"),
        ]
    )
    got = rules.resolve(metric, *spec)
    assert (got.name if got else None) == expected


def test_timing_only_rule_inherits_default_ranges() -> None:
    rules = RuleSet.from_config([_rule("load/*", renotify=60, name="t")])
    got = rules.resolve("load/load", "~:1", "~:2")
    assert got is not None and got.renotify == 60
    assert got.warning is not None and got.warning.text == "~:1" and got.critical is not None


def test_stale_defaults_to_three_intervals() -> None:
    rule = rule_from_config(_rule("a/*", warning="1"), 0)
    assert rule.stale_after(60) == 180 and rule.name == "alarm #1"
    assert rule_from_config(_rule("a/*", warning="1", stale="10m"), 0).stale_after(60) == 600

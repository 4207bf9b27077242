"""The pure engine, table-driven with an injected clock: each step is a value, a tick or an ack at a time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from alarms.engine import Engine, FlapSettings, MetricRecord
from alarms.observation import Observation
from alarms.rules import RuleSet
from downtime.index import DowntimeIndex
from downtime.windows import Window
from rexmon.config import AlarmRule

M = "host/load"


def play(
    steps: Sequence[tuple[Any, ...]],
    *,
    windows: Sequence[Window] = (),
    ds_type: str = "GAUGE",
    spec: tuple[str | None, str | None] = (None, None),
    flap: FlapSettings | None = None,
    **rule: Any,
) -> tuple[list[str], dict[str, MetricRecord]]:
    """Run steps ("v", t, value) / ("tick", t) / ("ack", t); return notices as "t kind STATE" and records."""
    rules = [AlarmRule(match=["host/*"], **rule)] if rule else []
    engine = Engine(RuleSet.from_config(rules), flap)
    index = DowntimeIndex(windows)
    records: dict[str, MetricRecord] = {}
    seen: list[str] = []
    for step in steps:
        t = step[1]
        if step[0] == "v":
            obs = Observation(M, t, step[2], ds_type, 60.0, *spec)
            out = engine.observe(records, [obs], t, index)
        elif step[0] == "tick":
            out = engine.tick(records, t, index)
        else:
            records[M] = Engine.acknowledge(records[M], "alice", "on it")
            continue
        records.update(out.records)
        seen += [f"{n.time:g} {n.kind} {n.state}" for n in out.notices]
    return seen, records


def values(*pairs: tuple[float, float | None]) -> list[tuple[Any, ...]]:
    return [("v", t, v) for t, v in pairs]


CRIT = {"warning": "~:80", "critical": "~:90"}


@pytest.mark.parametrize(
    ("case", "rule", "series", "expected"),
    [
        ("ok stays quiet", CRIT, [(0, 10), (60, 50)], []),
        (
            "warning then critical then ok",
            CRIT,
            [(0, 85), (60, 95), (120, 10)],
            ["0 problem WARNING", "60 problem CRITICAL", "120 recovery OK"],
        ),
        ("exact bound is not a breach", CRIT, [(0, 80), (60, 90)], ["60 problem WARNING"]),
        (
            "critical only",
            {"critical": "10:"},
            [(0, 11), (60, 9), (120, 12)],
            ["60 problem CRITICAL", "120 recovery OK"],
        ),
        ("inside range alerts with @", {"critical": "@10:20"}, [(0, 9), (60, 15)], ["60 problem CRITICAL"]),
        # hysteresis: enter above 90, leave only at or below 85
        (
            "hysteresis holds",
            {**CRIT, "recover_critical": "~:85"},
            [(0, 95), (60, 88), (120, 85)],
            ["0 problem CRITICAL", "120 problem WARNING"],
        ),
        (
            "hysteresis warning",
            {"warning": "~:80", "recover_warning": "~:70"},
            [(0, 81), (60, 75), (120, 70)],
            ["0 problem WARNING", "120 recovery OK"],
        ),
        # samples: three breaching values in a row
        ("samples 3", {**CRIT, "samples": 3}, [(0, 95), (60, 95), (120, 95)], ["120 problem CRITICAL"]),
        ("samples interrupted", {**CRIT, "samples": 3}, [(0, 95), (60, 95), (120, 10), (180, 95)], []),
        # for: the breach must last 5 minutes
        (
            "for 5m",
            {**CRIT, "for": "5m"},
            [(0, 95), (120, 95), (240, 95), (300, 95)],
            ["300 problem CRITICAL"],
        ),
        ("for interrupted", {**CRIT, "for": "5m"}, [(0, 95), (240, 10), (300, 95)], []),
        (
            "recovery is immediate",
            {**CRIT, "samples": 2},
            [(0, 95), (60, 95), (120, 1)],
            ["60 problem CRITICAL", "120 recovery OK"],
        ),
        ("U values are no data", CRIT, [(0, 95), (60, None), (120, None)], ["0 problem CRITICAL"]),
    ],
)
def test_value_transitions(case: str, rule: dict[str, Any], series: list[Any], expected: list[str]) -> None:
    assert play(values(*series), **rule)[0] == expected, case


def test_pending_state_is_visible() -> None:
    _, rec = play(values((0, 95), (60, 95)), samples=3, **CRIT)
    assert rec[M].state == "OK" and rec[M].pending == "CRITICAL" and rec[M].pending_count == 2


@pytest.mark.parametrize(
    ("rule", "steps", "expected", "state"),
    [
        # stale: no value for 3 x 60 s
        (CRIT, [("v", 0, 10), ("tick", 180), ("tick", 181)], ["181 problem UNKNOWN"], "UNKNOWN"),
        (
            {**CRIT, "stale": "10m"},
            [("v", 0, 10), ("tick", 500), ("tick", 601)],
            ["601 problem UNKNOWN"],
            "UNKNOWN",
        ),
        (
            CRIT,
            [("v", 0, 10), ("tick", 200), ("v", 260, 10)],
            ["200 problem UNKNOWN", "260 recovery OK"],
            "OK",
        ),
        (CRIT, [("v", 0, 10), ("v", 120, None), ("tick", 181)], ["181 problem UNKNOWN"], "UNKNOWN"),
        # renotify every 10 minutes while bad, not once acknowledged, and never when OK
        (
            {**CRIT, "renotify": "10m", "stale": "1h"},
            [("v", 0, 95), ("tick", 599), ("v", 600, 95), ("tick", 1200)],
            ["0 problem CRITICAL", "600 renotify CRITICAL", "1200 renotify CRITICAL"],
            "CRITICAL",
        ),
        (
            {**CRIT, "renotify": "10m", "stale": "1h"},
            [("v", 0, 95), ("ack", 1), ("tick", 700), ("v", 800, 1)],
            ["0 problem CRITICAL", "800 recovery OK"],
            "OK",
        ),
        # the ack is sticky across WARNING <-> CRITICAL and cleared by OK
        (
            {**CRIT, "renotify": "10m", "stale": "1h"},
            [("v", 0, 95), ("ack", 1), ("v", 60, 85), ("v", 120, 95), ("v", 180, 1), ("v", 240, 95)],
            ["0 problem CRITICAL", "180 recovery OK", "240 problem CRITICAL"],
            "CRITICAL",
        ),
    ],
)
def test_time_driven(rule: dict[str, Any], steps: list[Any], expected: list[str], state: str) -> None:
    seen, rec = play(steps, **rule)
    assert seen == expected
    assert rec[M].state == state


def test_flapping_is_reported_once_then_quiet_until_it_calms() -> None:
    flap = FlapSettings(window=1000, start=4, stop=1)
    series = [(t, 95 if (t // 60) % 2 else 1) for t in range(60, 600, 60)]  # bad, ok, bad, ok...
    steps = [*values(*series), ("tick", 1500), ("v", 1560, 95)]
    seen, rec = play(steps, flap=flap, stale="1h", **CRIT)
    assert seen == [
        "60 problem CRITICAL",
        "120 recovery OK",
        "180 problem CRITICAL",
        "240 flapping OK",  # the 4th change: flapping, reported once
        "1500 problem CRITICAL",  # calmed down: users learn the state it settled in
    ]
    assert not rec[M].flapping


def w(start: float, end: float, severity: str = "outage", scope: str = "host/*", did: int = 7) -> Window:
    return Window(did, start, end, (scope,), severity, reason="disk swap")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "windows", "steps", "expected"),
    [
        (
            "outage hides a problem, its end tells at once",
            [w(100, 1000)],
            [("v", 0, 1), ("v", 120, 95), ("tick", 500), ("tick", 1000)],
            ["1000 problem CRITICAL"],
        ),
        (
            "problem starting and ending inside: silence",
            [w(100, 1000)],
            [("v", 120, 95), ("v", 180, 1), ("tick", 1000)],
            [],
        ),
        (
            "notified before, recovered inside: recovery told",
            [w(100, 1000)],
            [("v", 0, 95), ("v", 200, 1), ("tick", 1000)],
            ["0 problem CRITICAL", "1000 recovery OK"],
        ),
        (
            "at-risk lets CRITICAL through",
            [w(100, 1000, "at-risk")],
            [("v", 120, 95), ("v", 180, 85), ("tick", 1000)],
            ["120 problem CRITICAL", "1000 problem WARNING"],
        ),
        (
            "at-risk holds WARNING",
            [w(100, 1000, "at-risk")],
            [("v", 120, 85), ("v", 180, 1), ("tick", 1000)],
            [],
        ),
        (
            "other scope does not apply",
            [w(100, 1000, scope="other/*")],
            [("v", 120, 95)],
            ["120 problem CRITICAL"],
        ),
        ("end is exclusive", [w(100, 1000)], [("v", 1000, 95)], ["1000 problem CRITICAL"]),
        (
            "renotify held in downtime",
            [w(100, 1000)],
            [("v", 0, 95), ("tick", 700), ("v", 999, 95), ("v", 1000, 95)],
            ["0 problem CRITICAL", "1000 renotify CRITICAL"],
        ),
    ],
)
def test_downtime_interplay(case: str, windows: list[Window], steps: list[Any], expected: list[str]) -> None:
    seen, rec = play(steps, windows=windows, renotify="10m", stale="1h", **CRIT)
    assert seen == expected, case


def test_state_in_downtime_is_recorded() -> None:
    _, rec = play([("v", 120, 95)], windows=[w(100, 1000)], **CRIT)
    assert rec[M].state == "CRITICAL" and rec[M].downtime_id == 7 and rec[M].notified == "OK"


@pytest.mark.parametrize(
    ("ds_type", "series", "expected"),
    [
        # 60 per minute = 1/s: fine; 6000 per minute = 100/s: critical
        ("DERIVE", [(0, 0), (60, 60), (120, 6060)], ["120 problem CRITICAL"]),
        ("COUNTER", [(0, 100), (60, 0), (120, 60)], []),  # a reset is no rate, not a huge one
        ("DERIVE", [(0, 100), (60, 0)], []),  # DERIVE may fall: -1.67/s is within ~:90
        ("ABSOLUTE", [(0, 0), (60, 6000)], ["60 problem CRITICAL"]),
        ("GAUGE", [(0, 6000)], ["0 problem CRITICAL"]),
    ],
)
def test_counters_are_judged_by_their_rate(ds_type: str, series: list[Any], expected: list[str]) -> None:
    assert play(values(*series), ds_type=ds_type, **CRIT)[0] == expected


def test_slurper_defaults_apply_without_rules() -> None:
    seen, _ = play(values((0, 50), (60, 99)), spec=("~:80", "~:95"))
    assert seen == ["60 problem CRITICAL"]


def test_ack_of_ok_metric_is_refused() -> None:
    _, rec = play(values((0, 1)), **CRIT)
    with pytest.raises(ValueError, match="nothing to acknowledge"):
        Engine.acknowledge(rec[M], "bob", "x")

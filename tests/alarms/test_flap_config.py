"""Configurable flap detection: ``[alarms]`` and per-rule keys, their validation, and what the engine does."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from alarms.engine import Engine, FlapSettings, MetricRecord
from alarms.observation import Observation
from alarms.pipeline import AlarmPipeline, build, rule_set
from alarms.rules import RuleSet
from rexmon.cli import cli
from rexmon.config import AlarmRule, AlarmsConfig, ConfigError, load

M = "host/load"
CRIT = {"critical": "~:90"}
#: OK at 0, then a change every minute: CRITICAL at 60, OK at 120, CRITICAL at 180, ... CRITICAL at 300
FAST = [("v", t, 95 if (t // 60) % 2 else 1) for t in range(0, 360, 60)]
#: [alarms] of most cases below: 3 changes within 10 minutes flap; calm again at none
TIGHT = {"flap_window": "10m", "flap_start": 3, "flap_stop": 0}


# -- parsing ------------------------------------------------------------------------------------------
def test_without_alarms_section_the_defaults_apply(write_config: Callable[..., Path]) -> None:
    cfg = load(write_config('[[alarm]]\nmatch = "host/*"\ncritical = "~:90"\n'))
    assert cfg.alarm_defaults == AlarmsConfig()
    assert rule_set(cfg).flap == FlapSettings(window=1800, start=6, stop=2, enabled=True)
    rule = cfg.alarms[0]
    assert (rule.flapping, rule.flap_window, rule.flap_start, rule.flap_stop) == (None, None, None, None)


def test_alarms_section_and_rule_keys_are_parsed(write_config: Callable[..., Path]) -> None:
    cfg = load(
        write_config(
            """
            [alarms]
            flapping = true
            flap_window = "1h30m"
            flap_start = 4

            [[alarm]]
            match = "host/*"
            critical = "~:90"
            flap_window = 600
            flap_stop = 0

            [[alarm]]
            match = "df/*"
            critical = "~:90"
            flapping = false
            """,
            confd={"50-flap.toml": "[alarms]\nflap_start = 8\n"},  # the last file wins, key by key
        )
    )
    assert cfg.alarm_defaults == AlarmsConfig(flapping=True, flap_window=5400, flap_start=8, flap_stop=2)
    host, df = cfg.alarms
    assert (host.flapping, host.flap_window, host.flap_start, host.flap_stop) == (None, 600.0, None, 0)
    assert df.flapping is False
    rules = rule_set(cfg)
    assert rules.flap == FlapSettings(window=5400, start=8, stop=2)
    # a rule's keys override [alarms] one by one; the rest comes from [alarms]
    flaps = {m: getattr(rules.resolve(m, None, "~:90"), "flap", "no rule") for m in ("host/a", "df/a", "x/y")}
    assert flaps == {
        "host/a": FlapSettings(600, 8, 0),
        "df/a": FlapSettings(5400, 8, 2, enabled=False),
        "x/y": None,  # slurper defaults, no [[alarm]]: the engine's default, i.e. [alarms]
    }
    assert Engine(rules).flap == FlapSettings(5400, 8, 2)


# -- validation: `rexmon check` names the file and the key ----------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[alarms]\nflap_window = 'soon'\n", "[alarms] flap_window: Value error, not a duration: 'soon'"),
        (
            "[alarms]\nflap_window = 0\n",
            "[alarms] flap_window: Value error, must be more than 0 s and at most 1w",
        ),
        (
            "[alarms]\nflap_window = '2w'\n",
            "[alarms] flap_window: Value error, must be more than 0 s and at most 1w",
        ),
        (
            "[alarms]\nflap_window = -5\n",
            "[alarms] flap_window: Value error, duration must be a finite number >= 0",
        ),
        ("[alarms]\nflap_window = true\n", "[alarms] flap_window: Value error, not a duration: True"),
        ("[alarms]\nflap_start = 1\n", "[alarms] flap_start: Input should be greater than or equal to 2"),
        ("[alarms]\nflap_start = 1001\n", "[alarms] flap_start: Input should be less than or equal to 1000"),
        ("[alarms]\nflap_start = '6'\n", "[alarms] flap_start: Input should be a valid integer"),
        ("[alarms]\nflap_start = 6.0\n", "[alarms] flap_start: Input should be a valid integer"),
        ("[alarms]\nflap_start = true\n", "[alarms] flap_start: Input should be a valid integer"),
        ("[alarms]\nflap_stop = -1\n", "[alarms] flap_stop: Input should be greater than or equal to 0"),
        ("[alarms]\nflap_stop = 'none'\n", "[alarms] flap_stop: Input should be a valid integer"),
        ("[alarms]\nflapping = 'no'\n", "[alarms] flapping: Input should be a valid boolean"),
        ("[alarms]\nflapping = 0\n", "[alarms] flapping: Input should be a valid boolean"),
        ("[alarms]\nflap_windw = '1h'\n", "[alarms] flap_windw: unknown key"),
        (
            "[alarms]\nflap_stop = 6\n",
            "[alarms] flap_stop: must be less than flap_start (6, the default), got 6",
        ),
        (
            "[alarms]\nflap_start = 2\n",
            "[alarms] flap_start: must be greater than flap_stop (2, the default), got 2",
        ),
        (
            "[alarms]\nflap_start = 3\nflap_stop = 4\n",
            "[alarms] flap_stop: must be less than flap_start (3), got 4",
        ),
        (
            "[[alarms]]\nflap_start = 3\n",
            "alarms: must be a table [alarms] (alarm rules are [[alarm]] tables)",
        ),
        # per rule
        (
            "[[alarm]]\nmatch = 'a/*'\nflap_window = 'x'\n",
            "[[alarm]] #1: flap_window: Value error, not a duration",
        ),
        (
            "[[alarm]]\nmatch = 'a/*'\nflap_window = '0s'\n",
            "[[alarm]] #1: flap_window: Value error, must be more",
        ),
        (
            "[[alarm]]\nmatch = 'a/*'\nflap_start = 1\n",
            "[[alarm]] #1: flap_start: Input should be greater than",
        ),
        (
            "[[alarm]]\nmatch = 'a/*'\nflap_start = 'x'\n",
            "[[alarm]] #1: flap_start: Input should be a valid integer",
        ),
        (
            "[[alarm]]\nmatch = 'a/*'\nflap_stop = -2\n",
            "[[alarm]] #1: flap_stop: Input should be greater than",
        ),
        (
            "[[alarm]]\nmatch = 'a/*'\nflapping = 'off'\n",
            "[[alarm]] #1: flapping: Input should be a valid boolean",
        ),
        ("[[alarm]]\nmatch = 'a/*'\nflap_strat = 3\n", "[[alarm]] #1: flap_strat: unknown key"),
        (
            "[[alarm]]\nmatch = 'a/*'\nflap_start = 2\n",
            "[[alarm]] #1: flap_start: must be greater than flap_stop (2, the default), got 2",
        ),
        (
            "[[alarm]]\nmatch = 'a/*'\nflap_stop = 6\n",
            "[[alarm]] #1: flap_stop: must be less than flap_start (6, the default), got 6",
        ),
        (
            "[alarms]\nflap_stop = 3\n[[alarm]]\nmatch = 'a/*'\nflap_start = 3\n",
            "[[alarm]] #1: flap_start: must be greater than flap_stop (3, from [alarms]), got 3",
        ),
        (
            "[alarms]\nflap_start = 4\n[[alarm]]\nmatch = 'a/*'\nflap_stop = 4\n",
            "[[alarm]] #1: flap_stop: must be less than flap_start (4, from [alarms]), got 4",
        ),
        (
            "[[alarm]]\nmatch = 'a/*'\nflap_start = 3\nflap_stop = 3\n",
            "[[alarm]] #1: flap_stop: must be less than flap_start (3), got 3",
        ),
    ],
)
def test_every_bad_value_is_an_error_naming_file_and_key(
    write_config: Callable[..., Path], runner: Any, text: str, expected: str
) -> None:
    path = write_config(text)
    result = runner.invoke(cli, ["--config", str(path), "check"])
    assert result.exit_code == 2, result.output
    assert f"{path}: {expected}" in result.output
    assert "1 error(s)" in result.output
    with pytest.raises(ConfigError):
        load(path)


def test_errors_name_the_conf_d_file_that_set_the_key_and_come_all_at_once(
    write_config: Callable[..., Path], runner: Any
) -> None:
    path = write_config(
        "[alarms]\nflap_start = 4\nflapping = 'yes'\n[[alarm]]\nmatch = 'a/*'\nflap_stop = 9\n",
        confd={"50-flap.toml": "[alarms]\nflap_stop = 5\n"},
    )
    result = runner.invoke(cli, ["--config", str(path), "check"])
    assert result.exit_code == 2
    confd = path.parent / "conf.d" / "50-flap.toml"
    assert f"{path}: [alarms] flapping: Input should be a valid boolean" in result.output
    # [alarms] is invalid as a whole, so the rule is not judged against it (that would be guesswork)
    assert "1 error(s)" in result.output
    fixed = write_config(
        "[alarms]\nflap_start = 4\n[[alarm]]\nmatch = 'a/*'\nflap_stop = 9\n",
        confd={"50-flap.toml": "[alarms]\nflap_stop = 5\n"},
    )
    result = runner.invoke(cli, ["--config", str(fixed), "check"])
    assert result.exit_code == 2
    assert f"{confd}: [alarms] flap_stop: must be less than flap_start (4), got 5" in result.output
    assert f"{fixed}: [[alarm]] #1: flap_stop: must be less than flap_start (4, from [alarms]), got 9" in (
        result.output
    )
    assert "2 error(s)" in result.output


def test_good_flap_keys_pass_check(write_config: Callable[..., Path], runner: Any) -> None:
    path = write_config(
        "[alarms]\nflapping = false\nflap_window = '1w'\nflap_start = 1000\nflap_stop = 999\n"
        "[[alarm]]\nmatch = 'a/*'\ncritical = '~:1'\nflapping = true\nflap_start = 2\nflap_stop = 0\n"
    )
    result = runner.invoke(cli, ["--config", str(path), "check"])
    assert result.exit_code == 0, result.output
    assert "1 alarm rule(s)" in result.output


@pytest.mark.parametrize(
    ("window", "start", "stop"), [(0, 3, 0), (-1, 3, 0), (60, 1, 0), (60, 3, 3), (60, 3, -1)]
)
def test_flap_settings_refuse_impossible_values(window: float, start: int, stop: int) -> None:
    with pytest.raises(ValueError, match="flapping needs window > 0"):
        FlapSettings(window, start, stop)


# -- the engine with configured settings ----------------------------------------------------------------
def play(
    steps: Sequence[tuple[Any, ...]],
    alarms: dict[str, Any] | None = None,
    rule: dict[str, Any] | None = None,
    records: dict[str, MetricRecord] | None = None,
) -> tuple[list[str], dict[str, MetricRecord]]:
    """Run ("v", t, value) / ("tick", t) with ``[alarms]`` and one rule; notices as "t kind STATE"."""
    rules = [AlarmRule(match=["host/*"], stale=86400, **{**CRIT, **(rule or {})})]
    engine = Engine(RuleSet.from_config(rules, AlarmsConfig(**(alarms or {}))))
    records = dict(records or {})
    seen: list[str] = []
    for step in steps:
        if step[0] == "v":
            out = engine.observe(records, [Observation(M, step[1], step[2])], step[1])
        else:
            out = engine.tick(records, step[1])
        records.update(out.records)
        seen += [f"{n.time:g} {n.kind} {n.state}" for n in out.notices]
    return seen, records


TOLD_ALL = [
    "60 problem CRITICAL",
    "120 recovery OK",
    "180 problem CRITICAL",
    "240 recovery OK",
    "300 problem CRITICAL",
]


@pytest.mark.parametrize(
    ("case", "alarms", "rule", "steps", "expected"),
    [
        (
            "3 changes in 10m flap at the 3rd; calm when the last is exactly 10m old",
            TIGHT,
            {},
            [*FAST, ("tick", 899), ("tick", 900)],
            ["60 problem CRITICAL", "120 recovery OK", "180 flapping CRITICAL", "900 problem CRITICAL"],
        ),
        (
            "flap_stop = 1: calm as soon as only one change is younger than 10m",
            {**TIGHT, "flap_stop": 1},
            {},
            [*FAST, ("tick", 839), ("tick", 840)],
            ["60 problem CRITICAL", "120 recovery OK", "180 flapping CRITICAL", "840 problem CRITICAL"],
        ),
        (
            "below the rate: a change every 5m never has 3 within 10m",
            TIGHT,
            {},
            [("v", 0, 1), ("v", 300, 95), ("v", 600, 1), ("v", 900, 95), ("v", 1200, 1)],
            ["300 problem CRITICAL", "600 recovery OK", "900 problem CRITICAL", "1200 recovery OK"],
        ),
        (
            "one second faster than that is the rate: flapping",
            TIGHT,
            {},
            [("v", 0, 1), ("v", 299, 95), ("v", 598, 1), ("v", 897, 95), ("v", 1196, 1), ("tick", 1796)],
            ["299 problem CRITICAL", "598 recovery OK", "897 flapping CRITICAL", "1796 recovery OK"],
        ),
        ("the defaults (6 in 30m) let the same changes through", {}, {}, FAST, TOLD_ALL),
        ("flapping = false: every change is told", {**TIGHT, "flapping": False}, {}, FAST, TOLD_ALL),
        ("a rule switches it off for its metrics", TIGHT, {"flapping": False}, FAST, TOLD_ALL),
        (
            "a rule switches it on, with [alarms]' other keys",
            {**TIGHT, "flapping": False},
            {"flapping": True},
            [*FAST, ("tick", 900)],
            ["60 problem CRITICAL", "120 recovery OK", "180 flapping CRITICAL", "900 problem CRITICAL"],
        ),
        (
            "a rule's flap_start overrides, the window stays [alarms]'",
            TIGHT,
            {"flap_start": 4},
            [*FAST, ("tick", 899), ("tick", 900)],
            [
                "60 problem CRITICAL",
                "120 recovery OK",
                "180 problem CRITICAL",
                "240 flapping OK",
                "900 problem CRITICAL",
            ],
        ),
        (
            "a rule's own window and start",
            {},
            {"flap_window": "2m", "flap_start": 2, "flap_stop": 0},
            [*FAST, ("tick", 419), ("tick", 420)],
            ["60 problem CRITICAL", "120 flapping OK", "420 problem CRITICAL"],
        ),
    ],
)
def test_engine_flapping_with_configured_settings(
    case: str, alarms: dict[str, Any], rule: dict[str, Any], steps: list[Any], expected: list[str]
) -> None:
    seen, records = play(steps, alarms, rule)
    assert seen == expected, case
    assert not records[M].flapping


def test_while_flapping_every_change_is_recorded_but_none_is_told() -> None:
    seen, records = play(FAST, TIGHT)
    assert seen[-1] == "180 flapping CRITICAL"
    rec = records[M]
    assert rec.flapping and rec.notified == "FLAPPING" and rec.state == "CRITICAL"
    assert rec.changes == (60, 120, 180, 240, 300)


def test_disabled_detection_counts_nothing() -> None:
    _, records = play(
        [*FAST, *[("v", t, 95 if (t // 60) % 2 else 1) for t in range(360, 1200, 60)]], {"flapping": False}
    )
    assert not records[M].flapping and records[M].changes == ()


def test_switching_detection_off_ends_flapping_and_tells_the_state() -> None:
    _, records = play(FAST, TIGHT)
    assert records[M].flapping
    seen, records = play([("tick", 310)], {**TIGHT, "flapping": False}, records=records)
    assert seen == ["310 problem CRITICAL"]
    assert not records[M].flapping and records[M].changes == ()


def test_slurper_defaults_without_a_rule_follow_alarms_section() -> None:
    engine = Engine(RuleSet.from_config([], AlarmsConfig(**TIGHT)))
    records: dict[str, MetricRecord] = {}
    kinds = []
    for _, t, v in FAST:
        out = engine.observe(records, [Observation(M, t, v, critical="~:90")], t)
        records.update(out.records)
        kinds += [n.kind for n in out.notices]
    assert kinds == ["problem", "recovery", "flapping"]


# -- from the config file to the engine, as the service and `alarms replay` build it ----------------------
def test_service_pipeline_uses_configured_flap_settings(
    write_config: Callable[..., Path], http_receiver: Any
) -> None:
    cfg = load(
        write_config(
            f"""
            [alarms]
            flap_window = "10m"
            flap_start = 3
            flap_stop = 0

            [[alarm]]
            match = ["host/*"]
            critical = "~:90"
            stale = "1d"

            [[alarm]]
            match = ["host/steady"]
            critical = "~:90"
            stale = "1d"
            flapping = false

            [[notify]]
            name = "hook"
            url = "{http_receiver.url()}"
            """
        )
    )
    pipeline = build(cfg)  # what `rexmon run` wires (rexmon.cli._alarm_sink)
    assert isinstance(pipeline, AlarmPipeline)
    assert pipeline.engine.flap == FlapSettings(window=600, start=3, stop=0)
    for _, t, v in FAST:
        for offset, metric in ((0, "host/flappy"), (1, "host/steady")):  # one notice per round: one subject
            pipeline.observe([Observation(metric, t + offset, v)], t + offset)
            pipeline.tick(t + offset)
    pipeline.tick(900)
    pipeline.close()
    titles = [b["title"] for b in http_receiver.bodies]
    assert [t.split()[1] for t in titles if "host/flappy" in t] == [
        "CRITICAL",
        "RECOVERY",
        "FLAPPING",
        "CRITICAL",
    ]
    assert [t.split()[1] for t in titles if "host/steady" in t] == [
        "CRITICAL",
        "RECOVERY",
        "CRITICAL",
        "RECOVERY",
        "CRITICAL",
    ]


@pytest.mark.parametrize(
    ("alarms", "kinds"),
    [
        ("", ["problem", "recovery", "problem", "recovery", "problem"]),
        (
            '[alarms]\nflap_window = "10m"\nflap_start = 3\nflap_stop = 0\n',
            ["problem", "recovery", "flapping"],
        ),
    ],
)
def test_replay_uses_configured_flap_settings(
    tmp_path: Path, write_config: Callable[..., Path], runner: Any, alarms: str, kinds: list[str]
) -> None:
    from rrd.archive import Archive, SeriesSpec, Update

    cfg = write_config(alarms + '[[alarm]]\nmatch = ["lab/*"]\ncritical = "~:90"\nstale = "1d"\n')
    archive = Archive(tmp_path / "rrd", 60)
    start = 1_700_000_040
    values = [10, 95, 10, 95, 10, 95]
    archive.write(
        [Update("lab/x", start + 60 * i, v, SeriesSpec("GAUGE", 120)) for i, v in enumerate(values)]
    )
    archive.close()
    args = ["--config", str(cfg), "alarms", "replay", "--from", str(start), "--to", str(start + 360)]
    result = runner.invoke(cli, [*args, "--match", "lab/*"])
    assert result.exit_code == 0, result.output
    assert [line.split()[2] for line in result.stdout.splitlines()] == kinds

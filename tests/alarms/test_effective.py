"""What the web and `rexmon alarms list` show: the ranges the engine judges by, and staleness on arrival."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from alarms.observation import Observation
from alarms.pipeline import AlarmPipeline, build
from alarms.store import current_states
from rexmon.cli import cli
from rexmon.config import load

NOW = 1_700_000_000.0
RULES = """
[[alarm]]
name = "hot rooms"
match = ["room/*"]
warning = "~:15"

[[alarm]]
name = "slow disks"
match = ["disk/*"]
for = "5m"
"""


def pipeline(write_config: Callable[..., Path], text: str, http: Any) -> tuple[Path, AlarmPipeline]:
    path = write_config(f'{text}\n[[notify]]\nname = "hook"\nurl = "{http.url()}"\n')
    sink = build(load(path))
    assert isinstance(sink, AlarmPipeline)
    return path, sink


def test_effective_ranges_and_rule_names_are_exposed(write_config, runner, http_receiver) -> None:
    path, p = pipeline(write_config, RULES, http_receiver)
    p.observe(
        [
            # the rule sets warning only: the slurper's defaults do not merge into it
            Observation("room/temp", NOW, 10, warning="~:30", critical="~:40"),
            # a rule with timing only keeps the slurper's defaults
            Observation("disk/sda", NOW, 1, warning="~:70", critical="~:90"),
            Observation("load/one", NOW, 1, warning="~:8", critical="~:16"),
        ],
        NOW,
    )
    p.close()
    shown = {s.metric_id: (s.warning, s.critical, s.rule) for s in current_states(p.store.engine)}
    assert shown == {
        "room/temp": ("~:15", None, "hot rooms"),
        "disk/sda": ("~:70", "~:90", "slow disks"),
        "load/one": ("~:8", "~:16", "slurper default"),
    }
    result = runner.invoke(cli, ["--config", str(path), "alarms", "list", "--json"])
    assert result.exit_code == 0, result.output
    room = next(s for s in json.loads(result.stdout) if s["metric_id"] == "room/temp")
    assert (room["warning"], room["critical"], room["rule"]) == ("~:15", None, "hot rooms")


def states(p: AlarmPipeline) -> dict[str, tuple[str, bool]]:
    return {s.metric_id: (s.state, s.stale) for s in current_states(p.store.engine)}


@pytest.mark.parametrize("behind", [0, 900, 86400])
def test_back_dated_values_are_fresh_while_they_keep_arriving(
    write_config, http_receiver, behind: float
) -> None:
    """Netbeam delivers values 15 minutes old by design: stale is measured on arrival."""
    _, p = pipeline(write_config, '[[alarm]]\nmatch = ["netbeam/*"]\ncritical = "~:100"\n', http_receiver)
    for minute in range(30):  # default stale: 3 x the 60 s interval
        now = NOW + 60 * minute
        p.observe([Observation("netbeam/link.in", now - behind, 5, interval=60)], now)
        p.tick(now)
        assert states(p) == {"netbeam/link.in": ("OK", False)}
    last = NOW + 60 * 29
    p.tick(last + 180)  # exactly `stale` after the last arrival: still fresh
    assert states(p) == {"netbeam/link.in": ("OK", False)}
    p.tick(last + 181)
    p.close()
    assert states(p) == {"netbeam/link.in": ("UNKNOWN", True)}
    assert [b["title"] for b in http_receiver.bodies] == ["[rexmon] UNKNOWN netbeam/link.in = 5"]

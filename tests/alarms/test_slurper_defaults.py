"""Slurpers ship default tolerances where a value has a standard meaning; [[alarm]] rules override them.

Each default is read the way the collector reads it (the slurper module's own specs, looked up by a
concrete metric name), resolved by the alarm rules and judged by the engine.
"""

from __future__ import annotations

import pytest

from alarms.engine import Engine
from alarms.observation import Observation
from alarms.rules import RuleSet
from rexmon.config import AlarmRule
from slurpers import enstore, fts, htcondor, slurm
from slurpers.api import MetricSpec, SpecIndex


def spec(specs: list[MetricSpec], name: str) -> MetricSpec:
    return SpecIndex(specs).get(name)


LINK = "ftsmon.link.a__b__atlas.success_rate"
CASES = [
    # slurper/metric, its spec, a fine value, a warning value, a critical value
    (f"fts/{LINK}", spec(fts._ftsmon_specs(), LINK), 98.0, 75.0, 4.7),
    ("condor/schedd.s1.held", spec(htcondor.specs(), "schedd.s1.held"), 3.0, 150.0, 5000.0),
    ("condor/schedd.s1.duty_cycle", spec(htcondor.specs(), "schedd.s1.duty_cycle"), 0.4, 0.96, 0.99),
    ("slurm/nodes.down", spec(slurm.specs(), "nodes.down"), 0.0, 1.0, 12.0),
    ("slurm/nodes.drained", spec(slurm.specs(), "nodes.drained"), 2.0, 6.0, 21.0),
    ("enstore/movers.error", spec(enstore.specs(), "movers.error"), 0.0, 1.0, 3.0),
    ("enstore/movers.offline", spec(enstore.specs(), "movers.offline"), 1.0, 3.0, 6.0),
]  # fmt: skip


def judge(rules: RuleSet, mid: str, s: MetricSpec, value: float) -> str:
    obs = Observation(mid, 1000.0, value, s.ds_type, 60.0, s.warning, s.critical)
    out = Engine(rules).observe({}, [obs], 1000.0)
    return out.records[mid].state if mid in out.records else "UNJUDGED"


@pytest.mark.parametrize(("mid", "s", "fine", "warn", "crit"), CASES, ids=[c[0] for c in CASES])
def test_default_tolerances_judge_without_any_rule(
    mid: str, s: MetricSpec, fine: float, warn: float, crit: float
) -> None:
    rules = RuleSet.from_config([])
    assert (judge(rules, mid, s, fine), judge(rules, mid, s, warn), judge(rules, mid, s, crit)) == (
        "OK",
        "WARNING",
        "CRITICAL",
    )
    assert rules.resolve(mid, s.warning, s.critical).name == "slurper default"  # type: ignore[union-attr]


def test_an_alarm_rule_overrides_a_default_and_can_switch_it_off() -> None:
    s = spec(slurm.specs(), "nodes.down")
    stricter = RuleSet.from_config([AlarmRule(match=["slurm/nodes.down"], critical="0", name="any down")])
    assert judge(stricter, "slurm/nodes.down", s, 1.0) == "CRITICAL"
    off = RuleSet.from_config([AlarmRule(match=["slurm/nodes.*"], warning="~:", name="not judged here")])
    assert judge(off, "slurm/nodes.down", s, 50.0) == "OK"


def test_a_vo_success_rate_has_no_default() -> None:
    s = spec(fts._ftsmon_specs(), "ftsmon.vo.atlas.success_rate")
    assert (s.warning, s.critical) == (None, None)
    assert judge(RuleSet.from_config([]), "fts/ftsmon.vo.atlas.success_rate", s, 1.0) == "UNJUDGED"

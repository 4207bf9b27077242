"""One alarm evaluation round over 100,000 metrics, 1,000 rules and 1,000 downtimes; against a naive peer.

The naive peer is what one writes first: for every metric try every rule (fnmatch, last match wins) and
every downtime (fnmatch + time check). It is measured on a sample of metrics in the same run and scaled
linearly (it is linear in the number of metrics by construction).
"""

from __future__ import annotations

import fnmatch
import logging
import statistics
import time
from typing import Any

from alarms.engine import Engine, MetricRecord, classify
from alarms.observation import Observation
from alarms.rules import Rule, RuleSet
from downtime.index import DowntimeIndex
from downtime.windows import Window

log = logging.getLogger(__name__)
NOW = 1_700_000_000.0


def _world(metrics: int, rules: int, downtimes: int) -> tuple[list[Observation], list[Any], list[Window]]:
    slurpers = max(1, metrics // 100)  # 100 metrics per slurper, like a host's Munin plugins
    obs = [
        Observation(f"s{i % slurpers}/m{i // slurpers}", NOW, float(i % 100), "GAUGE", 60.0, "~:80", "~:95")
        for i in range(metrics)
    ]
    from rexmon.config import AlarmRule

    rule_cfg = [
        AlarmRule(match=[f"s{i % slurpers}/m{i % 7}*"], warning="~:70", critical="~:90", name=f"r{i}")  # type: ignore[call-arg]
        for i in range(rules)
    ]
    windows = [
        Window(i, NOW - 600, NOW + 600 if i % 2 else NOW - 1, (f"s{(i * 7) % slurpers}/*",), "outage")
        for i in range(downtimes)
    ]
    return obs, rule_cfg, windows


def _rounds(obs: list[Observation], rule_cfg: list[Any], windows: list[Window]) -> tuple[float, float, int]:
    """A cold round (rules compiled, downtimes indexed, no previous state) and the warm round after it."""
    t0 = time.perf_counter()
    engine = Engine(RuleSet.from_config(rule_cfg))
    index = DowntimeIndex(windows)
    first = engine.observe({}, obs, NOW, index)
    cold = time.perf_counter() - t0
    later = [
        Observation(o.metric_id, NOW + 60, o.value, o.ds_type, o.interval, o.warning, o.critical) for o in obs
    ]
    t0 = time.perf_counter()
    engine.observe(first.records, later, NOW + 60, index)
    return cold, time.perf_counter() - t0, len(first.notices)


def _naive(obs: list[Observation], rule_cfg: list[Any], windows: list[Window]) -> float:
    t0 = time.perf_counter()
    compiled = [(r.match, Rule(r.name, *(None,) * 4)) for r in rule_cfg]
    from alarms.ranges import parse_range

    for o in obs:
        rule = None
        for patterns, _ in compiled:
            if any(fnmatch.fnmatchcase(o.metric_id, p) for p in patterns):
                rule = Rule("r", parse_range("~:70"), parse_range("~:90"))
        covering = [
            w
            for w in windows
            if w.start <= NOW < w.end and any(fnmatch.fnmatchcase(o.metric_id, p) for p in w.scope)
        ]
        if rule is not None and o.value is not None:
            state = classify(rule, "OK", o.value)
            MetricRecord(o.metric_id, state=state, downtime_id=covering[0].downtime_id if covering else None)
    return time.perf_counter() - t0


def run(quick: bool = False) -> dict[str, Any]:
    """Medians of the engine's round and of the naive peer (scaled to the same size); their ratio."""
    metrics, rules, downtimes = (10_000, 100, 100) if quick else (100_000, 1_000, 1_000)
    repeats = 3 if quick else 5
    obs, rule_cfg, windows = _world(metrics, rules, downtimes)
    colds, warms, notices = [], [], 0
    for _ in range(repeats):
        cold, warm, notices = _rounds(obs, rule_cfg, windows)
        colds.append(cold)
        warms.append(warm)
    sample = obs[:: max(1, metrics // 1000)]
    naive = [_naive(sample, rule_cfg, windows) * metrics / len(sample) for _ in range(3)]
    engine_s, naive_s = statistics.median(warms), statistics.median(naive)
    return {
        "metrics": metrics,
        "rules": rules,
        "downtimes": downtimes,
        "notices": notices,
        "engine_round_s": round(engine_s, 4),
        "engine_first_round_s": round(statistics.median(colds), 4),
        "naive_round_s": round(naive_s, 2),
        "naive_sample": len(sample),
        "speedup": round(naive_s / engine_s, 1),
        "target_met": engine_s < 1.0,
    }


def main() -> None:
    """Print the figures."""
    import json

    logging.basicConfig(level=logging.INFO)
    print(json.dumps(run(), indent=1))  # noqa: T201 (a benchmark's output is its report)


if __name__ == "__main__":
    main()

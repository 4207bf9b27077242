"""Replay rules over past values (pure: the caller reads the archive) and describe what would have fired."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from alarms.coverage import Coverage
from alarms.engine import Engine, MetricRecord, Outcome
from alarms.observation import Observation


@dataclass(frozen=True)
class Meta:
    """What the archive cannot tell about a metric: its slurper defaults and collection interval."""

    warning: str | None = None
    critical: str | None = None
    interval: float = 60.0


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def replay(
    engine: Engine,
    series: Mapping[str, Iterable[tuple[float, float | None]]],
    meta: Mapping[str, Meta],
    downtimes: Coverage,
) -> list[str]:
    """One line per notification that would have gone out, and per change a downtime held back.

    Archived values are already per-second rates for COUNTER/DERIVE, so every value is judged as a gauge.
    """
    lines: list[tuple[float, str, str]] = []
    for metric_id, points in series.items():
        m = meta.get(metric_id, Meta())
        records: dict[str, MetricRecord] = {}
        for t, v in points:
            obs = Observation(metric_id, t, v, "GAUGE", m.interval, m.warning, m.critical)
            out = engine.observe(records, [obs], t, downtimes)
            records.update(out.records)
            lines += _describe(out)
            out = engine.tick(records, t, downtimes)
            records.update(out.records)
            lines += _describe(out)
    return [text for _, _, text in sorted(lines)]


def _describe(out: Outcome) -> list[tuple[float, str, str]]:
    lines = []
    told = {(n.metric_id, n.state) for n in out.notices}
    for n in out.notices:
        value = "U" if n.value is None else f"{n.value:.6g}"
        rng = f" (range {n.range})" if n.range and n.state != "OK" else ""
        text = f"{_when(n.time)} {n.kind:<9} {n.state:<8} {n.metric_id} = {value}{rng}"
        lines.append((n.time, n.metric_id, text))
    for c in out.transitions:
        rec = out.records.get(c.metric_id)
        if rec is not None and rec.downtime_id is not None and (c.metric_id, c.new) not in told:
            text = f"{_when(c.time)} held      {c.new:<8} {c.metric_id} (downtime #{rec.downtime_id})"
            lines.append((c.time, c.metric_id, text))
    return lines

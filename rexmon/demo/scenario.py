"""The demo's story: which history each slurper gets, the alarm states it starts with, its downtimes."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

from alarms.observation import Observation
from alarms.pipeline import database
from downtime.store import DowntimeStore
from rexmon.config import Config
from rexmon.demo import history
from rrd.names import make_id
from slurpers.api import CollectContext, Reading, Slurper

log = logging.getLogger(__name__)
HOUR = 3600.0
DAY = 86400.0


def settings_table(settings: Any) -> dict[str, Any]:
    """A slurper's settings as the plain table of its config (secrets left out)."""
    if not is_dataclass(settings) or isinstance(settings, type):
        return {}
    out = {}
    for k, v in asdict(settings).items():
        if v is None or type(v).__name__ == "Secret":
            continue
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


def munin_now(slurpers: Sequence[Slurper[Any]]) -> dict[str, list[Reading]]:
    """One real run of each Munin plugin: its config (specs) and today's values."""
    out: dict[str, list[Reading]] = {}
    for s in slurpers:
        if s.type_name != "munin":
            continue
        try:
            out[s.id] = list(s.collect(CollectContext(now=time.time(), timeout=s.timeout)))
        except Exception as exc:  # a plugin that fails here fails live too; the demo goes on
            log.warning("munin plugin of %s failed: %s", s.id, exc)
    return out


def history_sources(
    cfg: Config, slurpers: Sequence[Slurper[Any]], times: Sequence[int], seed: int
) -> tuple[list[history.Source], list[history.Row]]:
    """Sources for the simulated slurpers; made-up rows for Munin plugins and rexmon's health."""
    sources = []
    for sc in cfg.slurpers:
        if (
            sc.enabled
            and (sc.type in history.SOURCES or sc.type in history.RANGE_SOURCES)
            and not (sc.type == "slurm" and sc.settings.mode == "rest")
        ):
            sources.append(history.Source(sc.id, sc.type, settings_table(sc.settings)))
        elif sc.enabled and sc.type == "slurm":  # slurmrestd serves what the fake commands print
            sources.append(history.Source(sc.id, "slurm", {"per_account": sc.settings.per_account}))
    extra: list[history.Row] = []
    by_id = {s.id: s for s in slurpers}
    for sid, readings in munin_now(slurpers).items():
        extra += history.munin_rows(sid, readings, by_id[sid].spec_for, times, seed)
    extra += history.health_rows([s.id for s in slurpers], times, seed)
    return sources, extra


def last_observations(
    cfg: Config,
    slurpers: Sequence[Slurper[Any]],
    sources: Sequence[history.Source],
    t: int,
    seed: int,
    extra: Sequence[history.Row] = (),
) -> list[Observation]:
    """The newest pre-filled values as observations, so the alarm states (and the metric catalogue's
    units, Munin's included: its plugins already ran once for ``extra``) are there at once."""
    by_id = {s.id: s for s in slurpers}
    out = []
    newest = [row for row in extra if row[1] == t and row[0] in by_id]
    for sid, when, name, value in [*history.rows_for(sources, [t], seed), *newest]:
        s = by_id[sid]
        spec = s.spec_for(name)
        if spec.ds_type != "GAUGE":
            continue  # a rate needs two values; the collector's first runs supply them
        out.append(
            Observation(
                make_id(sid, name),
                when,
                value,
                spec.ds_type,
                s.interval,
                spec.warning,
                spec.critical,
                unit=spec.unit,  # the shape, for the metric catalogue the web reads
                base=spec.base,
                label=spec.label,
                graph=spec.graph,
            )
        )
    return out


def downtime_plan(now: float) -> list[dict[str, Any]]:
    """One past and one current planned downtime."""
    day_start = now - now % DAY
    return [
        {
            "scope": ["tape/*"],
            "start": day_start - 2 * DAY + 9 * HOUR,
            "end": day_start - 2 * DAY + 13 * HOUR,
            "reason": "LTO8 library firmware upgrade",
            "kind": "planned",
            "severity": "outage",
            "ticket": "CHG0012345",
        },
        {
            "scope": ["slurm/nodes.*", "slurm-rest/nodes.*"],
            "start": now - 2 * HOUR,
            "end": now + 4 * HOUR,
            "reason": "cn003 drained for a memory test",
            "kind": "planned",
            "severity": "at-risk",
            "ticket": "INC0042",
        },
    ]


def file_downtimes(cfg: Config, now: float) -> int:
    """File the demo's downtimes unless this database has them already."""
    store = DowntimeStore(database(cfg.database_url))
    existing = {getattr(d, "reason", None) for d in store.list("all", now)}
    filed = 0
    for plan in downtime_plan(now):
        if plan["reason"] in existing:
            continue
        store.add(**plan, author="demo", rrule=None, now=now)
        filed += 1
    return filed

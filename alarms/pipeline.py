"""The alarm side as the service sees it: engine + database + downtimes + outbox, behind ``AlarmSink``.

``observe`` evaluates and commits (records, history, outbox rows in one transaction); ``tick`` handles
staleness, downtime starts and ends, re-notification and drains the outbox; ``close`` drains what is due.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine as DBEngine

from alarms.coverage import Coverage, WindowIndex
from alarms.engine import Engine, MetricRecord, Outcome
from alarms.notify import Deliverer, Renderer, route, targets_from_config
from alarms.observation import Observation
from alarms.rules import RuleSet
from alarms.store import AlarmStore

log = logging.getLogger(__name__)
#: how far around ``now`` downtime windows are loaded (they are re-read every round)
WINDOW_SPAN = 86400.0


def database(url: str) -> DBEngine:
    """An engine on ``url`` with every migration applied (downtime's and ours)."""
    from downtime.db import make_engine, upgrade

    engine: DBEngine = make_engine(url)
    upgrade(engine)
    return engine


class Downtimes:
    """Reads downtime windows from the database each round (none when the downtime store is absent)."""

    def __init__(self, engine: DBEngine) -> None:
        try:
            from downtime.store import DowntimeStore
        except ModuleNotFoundError:
            self._store: Any = None
        else:
            self._store = DowntimeStore(engine)

    def at(self, now: float) -> Coverage:
        """The windows around ``now``, indexed by scope."""
        if self._store is None:
            return WindowIndex(())
        windows = self._store.windows(now - WINDOW_SPAN, now + WINDOW_SPAN)
        try:
            from downtime.index import DowntimeIndex
        except ModuleNotFoundError:
            return WindowIndex(windows)
        index: Coverage = DowntimeIndex(windows)
        return index


class AlarmPipeline:
    """Implements ``alarms.observation.AlarmSink``."""

    def __init__(
        self, rules: RuleSet, db: DBEngine, deliverer: Deliverer, renderer: Renderer, targets: Any
    ) -> None:
        self.engine = Engine(rules)
        self.store = AlarmStore(db)
        self.downtimes = Downtimes(db)
        self.deliverer, self.renderer, self.targets = deliverer, renderer, targets
        self.records: dict[str, MetricRecord] = self.store.load()
        self._ack_id = self.store.last_ack_id()
        self._now: float | None = None

    def observe(self, observations: Sequence[Observation], now: float) -> None:
        """Evaluate newly archived values and commit the outcome."""
        self._now = now
        self._apply_acks()
        out = self.engine.observe(self.records, observations, now, self.downtimes.at(now))
        self._commit(out, now)

    def tick(self, now: float) -> None:
        """Staleness, downtime edges, re-notification; then deliver what is due."""
        self._now = now
        self._apply_acks()
        out = self.engine.tick(self.records, now, self.downtimes.at(now))
        self._commit(out, now)
        self.deliverer.deliver(now)

    def close(self) -> None:
        """Deliver what is due (as of the last round)."""
        if self._now is not None:
            self.deliverer.deliver(self._now)

    def _commit(self, out: Outcome, now: float) -> None:
        if not (out.records or out.transitions or out.notices):
            return
        messages = route(out.notices, self.targets, self.renderer)
        self.store.commit(out.records.values(), out.transitions, messages, now)
        self.records.update(out.records)  # only after the commit: a failed commit is re-evaluated
        for n in out.notices:
            log.info("alarm %s %s %s (%d message(s))", n.kind, n.metric_id, n.state, len(messages))

    def _apply_acks(self) -> None:
        """Acks filed by the CLI or the web since the last round (the database is the mailbox)."""
        for ack_id, metric_id, author, comment in self.store.acks_after(self._ack_id):
            self._ack_id = ack_id
            rec = self.records.get(metric_id)
            if rec is not None and rec.state != "OK":
                self.records[metric_id] = Engine.acknowledge(rec, author, comment)


def build(cfg: Any) -> AlarmPipeline:
    """The alarm sink for a loaded ``rexmon.config.Config`` (always one: slurper defaults need it)."""
    targets = targets_from_config(cfg.notify)
    db = database(cfg.database_url)
    store = AlarmStore(db)
    return AlarmPipeline(
        RuleSet.from_config(cfg.alarms), db, Deliverer(store, targets), Renderer(cfg.web.base_url), targets
    )

"""The alarm side as the service sees it: engine + database + downtimes + outbox, behind ``AlarmSink``.

``observe`` evaluates and commits (records, history, outbox rows in one transaction), together with the
values other collectors left in the inbox (``alarms.inbox``); ``tick`` drains the inbox too, handles
staleness, downtime starts and ends, re-notification and delivers the outbox; ``close`` delivers what is
due.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine as DBEngine

from alarms import inbox
from alarms.catalogue import CatalogueWriter
from alarms.coverage import Coverage
from alarms.engine import Engine, MetricRecord, Outcome
from alarms.inbox import InboxSink
from alarms.notify import Deliverer, DeliveryCounts, Renderer, route, targets_from_config
from alarms.observation import AlarmSink, Observation
from alarms.rules import RuleSet
from alarms.store import AlarmStore, OutboxMessage, write
from downtime.db import make_engine, upgrade
from downtime.index import DowntimeIndex
from downtime.store import DowntimeStore

log = logging.getLogger(__name__)
#: how far around ``now`` downtime windows are loaded (they are re-read every round)
WINDOW_SPAN = 86400.0
#: inbox chunks drained per observe/tick, so a backlog cannot stall the writer thread for long
MAX_CHUNKS = 20


def database(url: str) -> DBEngine:
    """An engine on ``url`` with every migration applied (downtime's and ours)."""
    engine: DBEngine = make_engine(url)
    upgrade(engine)
    return engine


class Downtimes:
    """Reads downtime windows from the database each round."""

    def __init__(self, engine: DBEngine) -> None:
        self._store = DowntimeStore(engine)

    def at(self, now: float) -> Coverage:
        """The windows around ``now``, indexed by scope."""
        return DowntimeIndex(self._store.windows(now - WINDOW_SPAN, now + WINDOW_SPAN))


class AlarmPipeline:
    """Implements ``alarms.observation.AlarmSink`` on the one host that evaluates alarms."""

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
        self.catalogue = CatalogueWriter(db)

    def observe(self, observations: Sequence[Observation], now: float) -> None:
        """Evaluate newly archived values, with the inbox's from other collectors, and commit."""
        self._now = now
        self._apply_acks()
        self._drain(observations, now, self.downtimes.at(now))

    def tick(self, now: float) -> None:
        """Drain the inbox; staleness, downtime edges, re-notification; then deliver what is due."""
        self.housekeep(now)
        self.deliverer.deliver(now)

    def housekeep(self, now: float) -> None:
        """``tick`` without delivery: the service delivers from a thread of its own, so a slow target
        never holds evaluation (nor evaluation the archive)."""
        self._now = now
        self._apply_acks()
        coverage = self.downtimes.at(now)
        self._drain((), now, coverage)
        out = self.engine.tick(self.records, now, coverage)
        self._commit(out, now)

    def deliver(self, now: float, *, wait: bool = True) -> int:
        """Deliver the due outbox (see :meth:`alarms.notify.Deliverer.deliver`)."""
        return self.deliverer.deliver(now, wait=wait)

    def close(self) -> None:
        """Deliver what is due (as of the last round)."""
        if self._now is not None:
            self.deliverer.deliver(self._now)

    def _drain(self, own: Sequence[Observation], now: float, coverage: Coverage) -> None:
        """Evaluate the oldest inbox chunk with ``own``, then further chunks while the inbox is full."""
        for _ in range(MAX_CHUNKS):
            with self.store.engine.begin() as conn:
                claimed = inbox.claim(conn)
                out = self.engine.observe(self.records, [*claimed.observations, *own], now, coverage)
                messages = self._write(conn, out, now)
                # the inbox's values carry no shape: their own collector wrote it to the catalogue
                shapes = self.catalogue.note(conn, own, now)
                # deleted in the transaction that commits their outcome: a crash loses and repeats nothing
                inbox.delete(conn, claimed.ids)
            self._applied(out, messages)
            self.catalogue.written(shapes)
            own = ()
            if len(claimed.ids) < inbox.CHUNK:
                return

    def _commit(self, out: Outcome, now: float) -> None:
        if not (out.records or out.transitions or out.notices):
            return
        with self.store.engine.begin() as conn:
            messages = self._write(conn, out, now)
        self._applied(out, messages)

    def _write(self, conn: Any, out: Outcome, now: float) -> list[OutboxMessage]:
        messages = route(out.notices, self.targets, self.renderer)
        write(conn, out.records.values(), out.transitions, messages, now)
        return messages

    def _applied(self, out: Outcome, messages: Sequence[OutboxMessage]) -> None:
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


def rule_set(cfg: Any) -> RuleSet:
    """The rules of a loaded ``rexmon.config.Config``: its ``[[alarm]]`` tables over its ``[alarms]``."""
    return RuleSet.from_config(cfg.alarms, cfg.alarm_defaults)


def build(cfg: Any, counts: DeliveryCounts | None = None) -> AlarmSink:
    """The alarm sink for a loaded ``rexmon.config.Config`` (always one: slurper defaults need it).

    A host with ``[scheduler] evaluate_alarms = false`` gets an :class:`~alarms.inbox.InboxSink`, which
    hands its values to the evaluating host through the database.
    """
    db = database(cfg.database_url)
    if not cfg.scheduler.evaluate_alarms:
        return InboxSink(db)
    targets = targets_from_config(cfg.notify)
    store = AlarmStore(db)
    deliverer = Deliverer(store, targets, counts=counts)
    return AlarmPipeline(rule_set(cfg), db, deliverer, Renderer(cfg.web.base_url), targets)

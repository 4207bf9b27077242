"""Running totals of FTS bus messages: pure functions from (committed checkpoint, deliveries) to readings.

The checkpoint holds per-link counters and the ids of recently committed messages. Applying the same
deliveries to the same checkpoint always gives the same result, so a run whose values were not archived
is simply applied again next time, and a redelivered message already in the checkpoint counts zero times.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slurpers import fts_parse
from slurpers.api import PayloadError, Reading, metric_name
from slurpers.fts_stomp import Delivery

log = logging.getLogger(__name__)
COUNTS = ("ok", "error", "aborted", "bytes")
#: committed message ids remembered for deduplication (redeliveries follow a lost ack quickly)
SEEN_MAX = 20000


def link_part(source: str, dest: str) -> str:
    """One metric-name part for a link: ``<source>__<dest>`` (``davs://a.b`` becomes ``davs_a.b``)."""
    return f"{metric_name(source)}__{metric_name(dest)}"


@dataclass
class BusRun:
    """The outcome of applying one batch: the new checkpoint and the readings to archive."""

    state: dict[str, Any]
    readings: list[Reading] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)


def apply(state: Mapping[str, Any], batch: Sequence[Delivery], connected: bool) -> BusRun:
    """Count ``batch`` on top of the committed ``state``; skip ids already committed."""
    totals: dict[str, dict[str, float]] = {k: dict(v) for k, v in (state.get("totals") or {}).items()}
    seen_list: list[str] = list(state.get("seen") or [])
    seen = set(seen_list)
    counters = {"messages": float(state.get("messages", 0)), "malformed": float(state.get("malformed", 0))}
    queues: dict[str, fts_parse.QueueLink] = {}
    rates: dict[str, list[float]] = {}
    run = BusRun({})
    for d in batch:
        if d.message_id in seen:
            continue  # committed before; its ack was lost and the broker sent it again
        seen.add(d.message_id)
        seen_list.append(d.message_id)
        counters["messages"] += 1
        try:
            _count(d, totals, queues, rates)
        except PayloadError as exc:
            counters["malformed"] += 1
            run.malformed.append(f"message {d.message_id}: {exc}")
    for msg in run.malformed:
        log.error("FTS bus: %s (not counted)", msg)
    run.state = {"totals": totals, "seen": seen_list[-SEEN_MAX:], **counters}
    run.readings = _readings(totals, queues, rates, counters, connected)
    return run


def _count(
    d: Delivery,
    totals: dict[str, dict[str, float]],
    queues: dict[str, fts_parse.QueueLink],
    rates: dict[str, list[float]],
) -> None:
    if d.doc is None:
        raise PayloadError(d.error or "unparseable body")
    kind = fts_parse.kind_of(d.doc)
    if kind == "queue":
        links = fts_parse.queue_links(d.doc)  # parse all first: a bad entry rejects the whole message
        for q in links:
            queues[metric_name(link_part(q.source, q.dest), q.vo)] = q
    elif kind == "complete":
        c = fts_parse.completion(d.doc)
        key = metric_name(link_part(c.source, c.dest), c.vo)
        row = totals.setdefault(key, dict.fromkeys(COUNTS, 0.0))
        row[c.state] += 1
        row["bytes"] += c.bytes
        if c.throughput is not None:
            rates.setdefault(key, []).append(c.throughput)
    # start and state messages are recognised and counted as messages only


def _readings(
    totals: Mapping[str, Mapping[str, float]],
    queues: Mapping[str, fts_parse.QueueLink],
    rates: Mapping[str, list[float]],
    counters: Mapping[str, float],
    connected: bool,
) -> list[Reading]:
    out = [Reading("bus.connected", 1.0 if connected else 0.0)]
    out += [Reading(f"bus.{k}", v) for k, v in counters.items()]
    for key, row in sorted(totals.items()):
        out += [Reading(f"bus.link.{key}.{k}", row.get(k, 0.0)) for k in COUNTS]
        if key in rates:
            out.append(Reading(f"bus.link.{key}.throughput_mean", sum(rates[key]) / len(rates[key])))
    for key, q in sorted(queues.items()):
        out += [Reading(f"bus.queue.{key}.active", q.active), Reading(f"bus.queue.{key}.ready", q.ready)]
        if q.ratio is not None:
            out.append(Reading(f"bus.queue.{key}.ratio", q.ratio))
    return out

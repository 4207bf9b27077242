"""Pure parsers for FTS3: ftsmon ``overview``/``stats`` JSON and STOMP message bodies of every known shape.

Nothing here does I/O or reads a clock. Milliseconds become seconds here, at the parser's edge, and
every scalar may arrive as a string (pre-2017 servers built messages from string templates).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from slurpers import api
from slurpers.api import PayloadError, to_float

MIB = 1024.0 * 1024.0
#: ftsmon per-state keys are present only when non-zero
OVERVIEW_COUNTS = ("submitted", "active", "finished", "failed")
STATS_KEYS = (
    "submitted",
    "active",
    "ready",
    "staging",
    "started",
    "finished",
    "failed",
    "canceled",
    "queued",
    "total",
)
FINAL_STATES = {
    "ok": "ok",
    "error": "error",
    "failed": "error",
    "abort": "aborted",
    "aborted": "aborted",
    "canceled": "aborted",
    "cancelled": "aborted",
}
MessageKind = Literal["queue", "complete", "start", "state"]


# -- ftsmon ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkStatus:
    """One (source SE, destination SE, VO) row of ftsmon ``overview``; throughput in bytes/s or None."""

    source: str
    dest: str
    vo: str
    submitted: float
    active: float
    finished: float
    failed: float
    throughput: float | None

    @property
    def success_rate(self) -> float | None:
        """finished*100/(finished+failed); None (unknown, never 0) when nothing finished or failed."""
        done = self.finished + self.failed
        return None if done == 0 else self.finished / done * 100.0  # never above 100, even near 1e308


def load_json(text: str, what: str) -> Any:
    """json.loads with a PayloadError naming the document; an empty body is an error too."""
    if not text.strip():
        raise PayloadError(f"{what}: empty response")
    return api.load_json(text, what)


def parse_overview(text: str) -> list[LinkStatus]:
    """ftsmon ``overview?page=all``, current and old (no ``overview`` wrapper, rate null, odd current)."""
    doc = load_json(text, "ftsmon overview")
    if not isinstance(doc, dict):
        raise PayloadError(f"ftsmon overview: expected a JSON object, got {type(doc).__name__}")
    page = doc.get("overview", doc)  # old ftsmon returned the page itself (slowpairs.py reads pairs['items'])
    items = page.get("items") if isinstance(page, dict) else None
    if not isinstance(items, list):
        raise PayloadError("ftsmon overview: no 'items' list (neither overview.items nor items)")
    return [_link(item, i) for i, item in enumerate(items)]


def _link(item: Any, i: int) -> LinkStatus:
    where = f"ftsmon overview: items[{i}]"
    if not isinstance(item, dict):
        raise PayloadError(f"{where}: expected an object, got {item!r:.60}")
    names = []
    for key in ("source_se", "dest_se", "vo_name"):
        value = item.get(key)
        if not isinstance(value, str) or not value:
            raise PayloadError(f"{where}: {key} missing or not a string")
        names.append(value)
    submitted, active, finished, failed = (_count(item.get(k, 0), f"{where}.{k}") for k in OVERVIEW_COUNTS)
    return LinkStatus(
        names[0],
        names[1],
        names[2],
        submitted,
        active,
        finished,
        failed,
        _current(item.get("current"), where),
    )


def _count(value: Any, what: str) -> float:
    if value is None:
        return 0.0
    v = to_float(value, what)
    if v < 0:
        raise PayloadError(f"{what}: negative count {value!r}")
    return v


def _finite(value: float, what: str) -> float:
    """A result computed from finite payload numbers that may still overflow (1e300 MiB/s)."""
    if not math.isfinite(value):
        raise PayloadError(f"{what} is not a finite number")
    return value


def _current(value: Any, where: str) -> float | None:
    """``current`` is MiB/s; old ftsmon put a placeholder tuple there, which means 'not measured'."""
    if value is None or isinstance(value, (list, tuple)):
        return None
    v = to_float(value, f"{where}.current")
    if v < 0:
        raise PayloadError(f"{where}.current: negative throughput {value!r}")
    return _finite(v * MIB, f"{where}.current: {value!r:.40} MiB/s")


def parse_stats(text: str) -> dict[str, float]:
    """ftsmon ``stats``: ``lasthour.<state>`` and ``retried.<state>`` counts (gauges: windowed)."""
    doc = load_json(text, "ftsmon stats")
    if not isinstance(doc, dict) or not isinstance(doc.get("lasthour"), dict):
        raise PayloadError("ftsmon stats: expected an object with a 'lasthour' object")
    out: dict[str, float] = {}
    for section in ("lasthour", "retried"):
        table = doc.get(section) or {}
        if not isinstance(table, dict):
            raise PayloadError(f"ftsmon stats: {section} is not an object")
        for key, value in table.items():
            if isinstance(key, str) and key.isidentifier():
                out[f"{section}.{key}"] = _count(value, f"ftsmon stats: {section}.{key}")
    return out


# -- STOMP messages -------------------------------------------------------------------------------


class Repeated(list[Any]):
    """Every value of a key that one JSON object repeats (the original queue-status ``channel``)."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            prev = out[key]
            out[key] = prev if isinstance(prev, Repeated) else Repeated([prev])
            out[key].append(value)
        else:
            out[key] = value
    return out


_MESSAGE_JSON = api.json_decoder(object_pairs_hook=_pairs)


def all_of(value: Any) -> list[Any]:
    """A repeated key's values, a JSON array's items, or the single value, as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def decode_body(body: str | bytes) -> dict[str, Any]:
    """Strip the trailing space or EOT byte FTS appends, parse keeping repeated keys, unwrap MONIT."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = body.rstrip(" \x04\r\n\t\x00")
    if not text:
        raise PayloadError("empty message body")
    try:
        doc = _MESSAGE_JSON.decode(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"message body is not JSON ({exc}): {text[:60]!r}") from None
    except ValueError as exc:  # NaN, Infinity, 1e999, an integer of too many digits
        raise api.json_error(exc, text, "message body") from None
    if not isinstance(doc, dict):
        raise PayloadError(f"message body is not a JSON object: {text[:60]!r}")
    if set(doc) == {"data", "metadata"} and isinstance(doc["data"], dict):
        doc = doc["data"]  # CERN MONIT's wrapper, not FTS's wire format
    return doc


def kind_of(doc: Mapping[str, Any]) -> MessageKind:
    """The message type from its keys, never from the topic (sites rename topics)."""
    if "t_final_transfer_state" in doc:
        return "complete"
    if "rationale" in doc or "active_count" in doc or "fts_id" in doc:
        return "queue"
    if "file_state" in doc:
        return "state"
    if "transfer_id" in doc:
        return "start"
    raise PayloadError(f"unknown FTS message (keys: {', '.join(sorted(doc)[:8])})")


@dataclass(frozen=True)
class QueueLink:
    """Queue state of one link: active and ready (submitted) transfers, active/max ratio in %."""

    source: str
    dest: str
    vo: str
    active: float
    ready: float
    ratio: float | None


@dataclass(frozen=True)
class Completion:
    """One finished transfer from a ``complete`` message; times in epoch seconds."""

    source: str
    dest: str
    vo: str
    state: str  # ok, error or aborted
    bytes: float
    throughput: float | None  # bytes/s of this transfer, None if its duration is unknown or 0
    time: float | None


def queue_links(doc: Mapping[str, Any]) -> list[QueueLink]:
    """Queue state from an optimizer (OP) message, the original repeated-``channel`` form or ``vos``."""
    if "rationale" in doc or "active_count" in doc:
        return [_optimizer(doc)]
    out: list[QueueLink] = []
    vos = [*all_of(doc.get("vo")), *all_of(doc.get("vos"))]
    if "channels" in doc:  # the 2011 draft: channels at the top, not split per VO
        vos.append({"voname": "all", "channels": doc["channels"]})
    if not vos:
        raise PayloadError("queue-status message has none of 'vo', 'vos' or 'channels'")
    for vo in vos:
        if not isinstance(vo, dict) or not isinstance(vo.get("voname"), str):
            raise PayloadError(f"queue-status message: VO entry without 'voname': {vo!r:.80}")
        for channel in [*all_of(vo.get("channel")), *all_of(vo.get("channels"))]:
            out.extend(_channel_links(vo["voname"], channel))
    return out


def _channel_links(vo: str, channel: Any) -> Iterator[QueueLink]:
    if not isinstance(channel, dict):
        raise PayloadError(f"queue-status message: VO {vo}: channel is not an object: {channel!r:.60}")
    name = channel.get("channel_name", "?")
    for i, link in enumerate(all_of(channel.get("links"))):
        where = f"queue-status message: VO {vo}, channel {name}, links[{i}]"
        if not isinstance(link, dict):
            raise PayloadError(f"{where}: not an object")
        src, dst = link.get("source_host"), link.get("dest_host")
        if not isinstance(src, str) or not isinstance(dst, str):
            raise PayloadError(f"{where}: source_host/dest_host missing")
        ratio = link.get("ratio")
        yield QueueLink(
            src or "any",
            dst or "any",
            vo,
            _count(link.get("active"), f"{where}.active"),
            _count(link.get("ready"), f"{where}.ready"),
            None if ratio in (None, "") else to_float(ratio, f"{where}.ratio"),
        )


def _optimizer(doc: Mapping[str, Any]) -> QueueLink:
    where = "optimizer message"
    src, dst = doc.get("source_se"), doc.get("dest_se")
    if not isinstance(src, str) or not isinstance(dst, str):
        raise PayloadError(f"{where}: source_se/dest_se missing")
    active = _count(doc.get("active_count"), f"{where}.active_count")
    limit = _count(doc.get("connections"), f"{where}.connections")
    return QueueLink(
        src,
        dst,
        "all",
        active,
        _count(doc.get("submitted_count"), f"{where}.submitted_count"),
        _finite(active * 100.0 / limit, f"{where}: ratio {active:g}/{limit:g}") if limit else None,
    )


def completion(doc: Mapping[str, Any]) -> Completion:
    """A ``complete`` message: link, final state, bytes and this transfer's throughput."""
    where = f"complete message {str(doc.get('tr_id', '?'))[:80]}"
    state = FINAL_STATES.get(str(doc.get("t_final_transfer_state", "")).strip().lower())
    if state is None:
        raise PayloadError(f"{where}: unknown t_final_transfer_state {doc.get('t_final_transfer_state')!r}")
    src = doc.get("src_se") or doc.get("src_hostname")
    dst = doc.get("dst_se") or doc.get("dst_hostname")
    vo = doc.get("vo") or doc.get("vo_name")
    if not all(isinstance(v, str) and v for v in (src, dst, vo)):
        raise PayloadError(f"{where}: src_se/src_hostname, dst_se/dst_hostname or vo missing")
    raw = doc.get("tr_bt_transfered", doc.get("tr_bt_transferred"))
    nbytes = _count(raw, f"{where}.tr_bt_transfered") if raw not in (None, "") else 0.0
    start, end = _ms(doc.get("timestamp_tr_st"), where), _ms(doc.get("timestamp_tr_comp"), where)
    rate = None
    if state == "ok" and start is not None and end is not None and end > start:
        rate = _finite(nbytes / (end - start), f"{where}: {nbytes:g} bytes in {end - start:g} s")
    return Completion(str(src), str(dst), str(vo), state, nbytes, rate, end)


def _ms(value: Any, where: str) -> float | None:
    """An epoch-milliseconds field ('1466632865616', '1326381922000.000000' or a number) in seconds."""
    if value in (None, "", 0, "0"):
        return None
    return to_float(value, where) / 1000.0

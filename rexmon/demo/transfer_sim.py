"""Transfer simulators in exactly the real formats: ftsmon and Netbeam over loopback HTTP, FTS on STOMP.

Values follow a daily cycle and are a pure function of (time, seed), so a test can compute what the
server served. One FTS link (to ``srm://srm.failing.example.org``) fails most of its transfers.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import stomp

from rexmon.demo.httpd import LoopbackHTTP

log = logging.getLogger(__name__)
DAY = 86400.0
FTSMON_PREFIX = "/fts3/ftsmon"
NETBEAM_PREFIX = "/api/network/esnet/prod"
FTS_LINKS = (
    ("davs://webdav.echo.stfc.ac.uk", "davs://eosatlas.cern.ch", "atlas", 60.0),
    ("davs://eosatlas.cern.ch", "davs://dcache.example.org", "atlas", 40.0),
    ("root://eoscms.cern.ch", "davs://cmsdcache.fnal.gov", "cms", 80.0),
    ("davs://eosatlas.cern.ch", "srm://srm.failing.example.org", "atlas", 20.0),
)
FAILING = "srm://srm.failing.example.org"
INTERFACES = ("devices/albq-asw1/interfaces/ae10", "devices/chic-cr55/interfaces/xe-0%2F1%2F0")
COLUMNS = {
    "traffic": ("in", "out"),
    "errors": ("in", "out"),
    "discards": ("in", "out"),
    "unicast_packets": ("in", "out"),
}


def daily(now: float, peak_hour: float = 15.0) -> float:
    """0..1, highest at ``peak_hour`` UTC."""
    return 0.5 + 0.5 * math.cos(2 * math.pi * ((now % DAY) / 3600.0 - peak_hour) / 24.0)


def _noise(*key: object) -> float:
    """A deterministic number in [0, 1) for a key."""
    return random.Random(":".join(map(str, key))).random()


# -- Netbeam -------------------------------------------------------------------------------------


def netbeam_value(resource: str, series: str, column: str, t: float, seed: int = 1) -> float:
    """The value the simulator serves for one point (bits/s for traffic, counts otherwise)."""
    level = daily(t, 15.0 if column == "in" else 3.0)
    n = _noise(seed, resource, series, column, int(t))
    if series == "traffic":
        return round(2e9 + 2.0e10 * level + 1e8 * n, 1)
    if series == "unicast_packets":
        return round(1e5 + 1e6 * level + 1e4 * n, 1)
    return float(int(3 * n * n)) if resource.endswith("ae10") or column == "in" else 0.0


def netbeam_points(
    resource: str, series: str, begin_ms: int, end_ms: int, step: int, seed: int, nulls: int = 0
) -> list[list[Any]]:
    """Points of [begin, end] (inclusive, ms) on multiples of ``step`` s; every ``nulls``-th value null."""
    first = -(-begin_ms // (step * 1000)) * step
    out: list[list[Any]] = []
    t = first
    while t * 1000 <= end_ms:
        row: list[Any] = [t * 1000]
        for col in COLUMNS[series]:
            null = nulls and (t // step) % nulls == 0 and col == "out"
            row.append(None if null else netbeam_value(resource, series, col, t, seed))
        out.append(row)
        t += step
    return out


# -- ftsmon --------------------------------------------------------------------------------------


def _link_figures(src: str, dst: str, vo: str, peak: float, now: float, seed: int) -> dict[str, Any]:
    level = daily(now)
    n = _noise(seed, src, dst, int(now // 60))
    finished = int(peak * (2 + 8 * level) * (0.9 + 0.2 * n))
    failed = int(finished * (4.0 if dst == FAILING else 0.02 + 0.03 * n))
    if dst == FAILING:
        finished //= 5
    return {
        "source_se": src,
        "dest_se": dst,
        "vo_name": vo,
        "submitted": int(peak * (1 + 3 * level) * n),
        "active": int(peak * (0.2 + 0.6 * level)),
        "finished": finished,
        "failed": failed,
        "current": 0.0 if dst == FAILING else round(peak * (1 + 4 * level) * (0.8 + 0.4 * n), 2),
    }


def ftsmon_items(now: float, seed: int = 1, vo: str = "") -> list[dict[str, Any]]:
    """ftsmon's overview items: per-state keys only when non-zero, ``rate`` per item, ``current`` MiB/s."""
    items = []
    for src, dst, link_vo, peak in FTS_LINKS:
        if vo and vo != link_vo:
            continue
        fig = _link_figures(src, dst, link_vo, peak, now, seed)
        item = {k: v for k, v in fig.items() if v or k in ("source_se", "dest_se", "vo_name", "current")}
        done = fig["finished"] + fig["failed"]
        item["rate"] = round(fig["finished"] * 100.0 / done, 2) if done else 0
        items.append(item)
    return items


def ftsmon_overview(now: float, seed: int = 1, vo: str = "") -> str:
    """``overview?page=all`` with ``summary.current`` 0, exactly as views/overview.py computes it."""
    items = ftsmon_items(now, seed, vo)
    summary: dict[str, Any] = {
        k: 0
        for k in (
            "active",
            "archiving",
            "canceled",
            "failed",
            "finished",
            "ready",
            "staging",
            "started",
            "submitted",
        )
    }
    for it in items:
        for k in ("active", "failed", "finished", "submitted"):
            summary[k] += it.get(k, 0)
    summary["current"] = 0
    if summary["finished"] + summary["failed"]:
        summary["rate"] = round(summary["finished"] * 100.0 / (summary["finished"] + summary["failed"]), 2)
    page = {
        "count": len(items),
        "endIndex": len(items),
        "page": 1,
        "pageCount": 1,
        "pageSize": len(items),
        "startIndex": 1,
        "items": items,
    }
    return json.dumps({"overview": page, "summary": summary}, indent=2, sort_keys=True)


def ftsmon_stats(now: float, seed: int = 1, vo: str = "") -> str:
    """``stats``: last-hour counts; queued = submitted + ready, total = finished + failed + canceled."""
    items = ftsmon_items(now, seed, vo)
    last = {k: sum(it.get(k, 0) for it in items) for k in ("submitted", "active", "finished", "failed")}
    last.update(ready=0, staging=0, started=0, canceled=0)
    last["queued"] = last["submitted"] + last["ready"]
    last["total"] = last["finished"] + last["failed"] + last["canceled"]
    retried = {"failed": last["failed"] // 10, "finished": last["finished"] // 20}
    return json.dumps({"lasthour": last, "retried": retried}, indent=2, sort_keys=True)


# -- the HTTP server -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request as the server saw it: the raw path (percent-encoding kept) and the query."""

    path: str
    query: dict[str, str]


@dataclass
class Fault:
    """Misbehaviour for paths starting with ``prefix``: a delay, an HTTP status and/or a body."""

    prefix: str
    delay: float = 0.0
    status: int = 200
    body: str | None = None


@dataclass
class TransferSim:
    """A loopback HTTP server speaking ftsmon and Netbeam; ``start()``/``stop()``, ``url``, ``requests``."""

    seed: int = 1
    clock: Callable[[], float] = time.time
    netbeam_step: int = 30
    netbeam_nulls: int = 0
    faults: list[Fault] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    _http: LoopbackHTTP = field(default_factory=lambda: LoopbackHTTP("transfer-sim"))

    @property
    def url(self) -> str:
        return self._http.url

    @property
    def ftsmon_url(self) -> str:
        return self.url + FTSMON_PREFIX

    @property
    def netbeam_url(self) -> str:
        return self.url + NETBEAM_PREFIX

    def start(self) -> TransferSim:
        self._http.serve(_handler(self))
        return self

    def stop(self) -> None:
        self._http.stop()

    def respond(self, path: str, query: Mapping[str, str]) -> tuple[int, str]:
        """(status, body) for a request; faults first, then ftsmon, then Netbeam, else 404."""
        for fault in self.faults:
            if path.startswith(fault.prefix):
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.status != 200 or fault.body is not None:
                    return fault.status, fault.body or ""
        now = self.clock()
        if path.startswith(FTSMON_PREFIX + "/"):
            page = path[len(FTSMON_PREFIX) + 1 :].strip("/")
            vo = query.get("vo", "")
            if page == "overview":
                return 200, ftsmon_overview(now, self.seed, vo)
            if page == "stats":
                return 200, ftsmon_stats(now, self.seed, vo)
        if path.startswith(NETBEAM_PREFIX + "/"):
            return self._netbeam(path[len(NETBEAM_PREFIX) + 1 :], query, now)
        return 404, '{"error": "not found"}'

    def _netbeam(self, rest: str, query: Mapping[str, str], now: float) -> tuple[int, str]:
        resource, _, series = rest.rpartition("/")
        if resource not in INTERFACES or series not in COLUMNS:
            return 404, ""
        try:
            begin, end = int(query["begin"]), int(query["end"])
        except (KeyError, ValueError):
            return 400, '{"error": "begin and end (ms) are required"}'
        points = netbeam_points(
            resource,
            series,
            begin,
            min(end, int(now * 1000)),
            self.netbeam_step,
            self.seed,
            self.netbeam_nulls,
        )
        if not points:
            return 200, ""  # what Netbeam answers for a window without data
        body = {"name": series, "columns": ["time", *COLUMNS[series]], "points": points, "utc": True}
        return 200, json.dumps(body)


def _handler(sim: TransferSim) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            sim.requests.append(Request(parts.path, query))
            status, body = sim.respond(parts.path, query)
            data = body.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("transfer-sim: " + format, *args)

    return Handler


# -- FTS messages on STOMP -----------------------------------------------------------------------


def jsoncpp(doc: Mapping[str, Any], trailer: str = " ") -> str:
    """A body as fts-msg-bulk sends it: jsoncpp styled (tabs, ' : ', sorted keys) plus one trailing byte."""
    return json.dumps(doc, indent="\t", sort_keys=True, separators=(",", " : ")) + trailer


def optimizer_message(src: str, dst: str, active: int, submitted: int, connections: int, ts: float) -> str:
    """An optimizer ("OP", queue_state) message."""
    return jsoncpp(
        {
            "active_count": active,
            "connections": connections,
            "dest_se": dst,
            "diff": connections - active,
            "duration_avg": 38,
            "endpnt": "fts3-sim.example.org",
            "filesize_avg": 2147483648.0,
            "filesize_stddev": 104857600.0,
            "rationale": "Good link efficiency",
            "retry_count": 0,
            "source_se": src,
            "submitted_count": submitted,
            "success_rate": 100.0,
            "throughput": 1258291200.0,
            "throughput_ema": 1200000000.0,
            "timestamp": int(ts * 1000),
        }
    )


def _host(se: str) -> str:
    return se.split("://", 1)[-1]


def complete_message(
    src: str, dst: str, vo: str, state: str, nbytes: int, start: float, end: float, *, legacy: bool = False
) -> str:
    """A transfer-complete ("CO") message; ``legacy`` = pre-2017: every scalar a string, EOT trailer."""
    doc: dict[str, Any] = {
        "tr_id": f"sim__{_host(src)}__{_host(dst)}__{int(end * 1000)}",
        "endpnt": "fts3-sim.example.org",
        "vo": vo,
        "src_se": src,
        "dst_se": dst,
        "src_hostname": _host(src),
        "dst_hostname": _host(dst),
        "t_final_transfer_state": state,
        "t_final_transfer_state_flag": int(state == "Ok"),
        "tr_bt_transfered": nbytes,
        "f_size": nbytes,
        "file_size": nbytes,
        "t_error_code": "0",
        "timestamp_tr_st": int(start * 1000),
        "timestamp_tr_comp": int(end * 1000),
        "tr_timestamp_start": int(start * 1000) - 1000,
        "tr_timestamp_complete": int(end * 1000) + 500,
        "throughput": nbytes / (end - start) if end > start else -1,
        "job_state": "FINISHED",
        "file_id": "1",
    }
    if not legacy:
        return jsoncpp(doc)
    return jsoncpp(
        {
            k: (f"{v}.000000" if k.startswith(("timestamp", "tr_timestamp")) else str(v))
            for k, v in doc.items()
        },
        trailer="\x04",
    )


def legacy_queue_status(
    vo: str, channels: Iterable[tuple[str, list[tuple[str, str, int, int]]]], ts: float
) -> str:
    """The original queue-status message: one ``vo`` object that REPEATS the key ``channel``."""
    blocks = []
    for name, links in channels:
        rows = ",".join(
            f'{{"source_host":"{s}","dest_host":"{d}","active":"{a}","ratio":"{a / 10:.6f}%","ready":"{r}"}}'
            for s, d, a, r in links
        )
        blocks.append(f'"channel":{{"channel_name":"{name}","channel_type":"","links":[{rows}]}}')
    return (
        f'{{"fts_id":"https://fts-sim.example.org:8443/glite-data-transfer-fts/services/FileTransfer",'
        f'"time":"{int(ts * 1000)}.000000","vo":{{"voname":"{vo}",{",".join(blocks)}}}}}'
    )


class FTSPublisher:
    """Publishes FTS bodies to a broker over STOMP (persistent, like fts-msg-bulk's CO messages)."""

    def __init__(self, host: str, port: int, user: str = "", password: str = "") -> None:
        self._conn = stomp.Connection11([(host, port)], reconnect_attempts_max=3)
        self._conn.connect(user, password, wait=True)

    def send(self, destination: str, body: str, persistent: bool = True) -> None:
        self._conn.send(destination, body, headers={"persistent": "true" if persistent else "false"})

    def close(self) -> None:
        if self._conn.is_connected():
            self._conn.disconnect(receipt="bye")
        self._conn.transport.stop()

    def __enter__(self) -> FTSPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

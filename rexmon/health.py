"""Liveness and readiness of a rexmon process, and the collector's small HTTP server for them and /metrics.

``/healthz`` answers 200 while the process answers at all. ``/readyz`` answers 200 when the archive can be
written (rrdcached answers PING, or ``rrd_dir`` is a writable directory), the database answers, and the
collectors' heartbeats are fresh; else 503. Both bodies are JSON naming each check and what failed.
``rexmon web`` serves the same through web/health.py.
"""

from __future__ import annotations

import json
import logging
import os
import socketserver
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sqlalchemy import text
from sqlalchemy.engine import Engine

from rexmon import selfmetrics
from rexmon.heartbeat import beats

log = logging.getLogger(__name__)
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class Check:
    """One readiness check: its name, whether it passed, and what was found."""

    name: str
    ok: bool
    detail: str


def check_archive(rrd_dir: os.PathLike[str] | str, rrdcached: str, *, write: bool = True) -> Check:
    """rrdcached answers PING when configured; else ``rrd_dir`` is a directory this process can write
    (``write=False``, the web site: can read)."""
    if rrdcached:
        from rrd.rrdcached import RRDCachedClient, RRDCachedError

        client = RRDCachedClient(rrdcached, timeout=3.0)
        try:
            status, msg, _ = client.command("PING")
        except RRDCachedError as exc:
            return Check("archive", False, f"rrdcached does not answer: {exc}")
        finally:
            client.close()
        if status < 0:
            return Check("archive", False, f"rrdcached at {rrdcached} answered PING with: {msg}")
        return Check("archive", True, f"rrdcached at {rrdcached} answers")
    path = os.fspath(rrd_dir)
    if not os.path.isdir(path):
        return Check("archive", False, f"rrd_dir {path} is not a directory")
    how, mode = ("writable", os.W_OK | os.X_OK) if write else ("readable", os.R_OK | os.X_OK)
    if not os.access(path, mode):
        return Check("archive", False, f"rrd_dir {path} is not {how} by uid {os.getuid()}")
    return Check("archive", True, f"rrd_dir {path} is {how}")


def check_database(engine: Engine) -> Check:
    """The database answers ``SELECT 1``."""
    from downtime.db import mask

    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not reachable"; say which
        first = (str(exc).splitlines() or [""])[0][:300]
        return Check("database", False, f"{mask(str(engine.url))}: {type(exc).__name__}: {first}")
    return Check("database", True, f"{mask(str(engine.url))} answers")


def check_heartbeat(engine: Engine, now: float, max_age: float, collector: str | None = None) -> Check:
    """Every collector's heartbeat (or only ``collector``'s) is at most ``max_age`` seconds old."""
    try:
        rows = [b for b in beats(engine) if collector is None or b.collector == collector]
    except Exception as exc:  # the database check names the cause; this one says what it could not judge
        first = (str(exc).splitlines() or [""])[0][:200]
        return Check("heartbeat", False, f"cannot read heartbeats ({type(exc).__name__}: {first})")
    if not rows:
        who = f"collector {collector} has not" if collector else "no collector has"
        return Check("heartbeat", False, f"{who} recorded a heartbeat yet")
    stale = [f"{b.collector} ({now - b.beat:.0f} s old)" for b in rows if now - b.beat > max_age]
    for b in rows:
        selfmetrics.HEARTBEAT_AGE.labels(b.collector).set(max(0.0, now - b.beat))
    if stale:
        return Check("heartbeat", False, f"older than {max_age:g} s: {', '.join(stale)}")
    return Check("heartbeat", True, ", ".join(f"{b.collector} {now - b.beat:.0f} s old" for b in rows))


def readiness(checks: Iterable[Check]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of ``/readyz``: 200 when every check passed, else 503 naming the failures."""
    done = list(checks)
    failed = [c.name for c in done if not c.ok]
    body = {
        "ready": not failed,
        "failed": failed,
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in done},
    }
    return (503 if failed else 200), body


LIVENESS: dict[str, Any] = {"alive": True}


class CollectorEndpoints:
    """The collector's WSGI app: ``/metrics``, ``/healthz`` and ``/readyz``."""

    def __init__(self, ready: Callable[[], Iterable[Check]]) -> None:
        self.ready = ready

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            data, ctype = selfmetrics.exposition()
            start_response("200 OK", [("Content-Type", ctype)])
            return [data]
        if path == "/healthz":
            return _json(start_response, 200, LIVENESS)
        if path == "/readyz":
            status, body = readiness(self.ready())
            return _json(start_response, status, body)
        return _json(start_response, 404, {"error": f"no such page {path!r}: /metrics, /healthz or /readyz"})


def _json(start_response: StartResponse, status: int, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
    start_response(
        f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        log.debug(format, *args)


class EndpointServer:
    """Serves a WSGI app on ``host:port`` in a daemon thread until :meth:`stop`."""

    def __init__(self, host: str, port: int, app: Any) -> None:
        self._server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="rexmon-metrics", daemon=True)

    def start(self) -> EndpointServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve_collector(config: Any, shard: str | None) -> EndpointServer | None:
    """Start the collector's endpoints on ``[scheduler] metrics_listen`` (None when it is off).

    Raises OSError when the address cannot be bound (the caller says so and exits).
    """
    from downtime.db import make_engine
    from rexmon.cli_web import split_listen
    from rexmon.heartbeat import collector_name

    listen = config.scheduler.metrics_listen
    if not listen:
        return None
    host, port = split_listen(listen)
    engine = make_engine(config.database_url)
    name = collector_name(shard if shard is not None else config.scheduler.shard or None)

    def ready() -> list[Check]:
        import time

        return [
            check_archive(config.rrd_dir, config.rrdcached),
            check_database(engine),
            check_heartbeat(engine, time.time(), config.watchdog.max_age, name),
        ]

    return EndpointServer(host, port, CollectorEndpoints(ready)).start()

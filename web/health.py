"""``/metrics`` (Prometheus text format), ``/healthz`` and ``/readyz`` of ``rexmon web``.

They answer without a login, like the static files, so a scraper and a load balancer need no account;
``/metrics`` names slurper ids and collector hosts, so keep the port away from the public internet or
put the paths behind the reverse proxy's rules (docs/deployment.md).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from rexmon import selfmetrics
from rexmon.health import LIVENESS, check_archive, check_database, check_heartbeat, readiness

bp = Blueprint("health", __name__)


def _ext(name: str) -> Any:
    return current_app.extensions["rexmon"][name]


@bp.get("/metrics")
def metrics() -> Response:
    """rexmon web's own metrics and the collectors' heartbeat ages."""
    config = _ext("config")
    check_heartbeat(_ext("monitor").engine, _ext("clock")(), config.watchdog.max_age)  # sets the age gauges
    data, ctype = selfmetrics.exposition()
    return Response(data, content_type=ctype)


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers."""
    return jsonify(LIVENESS)


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Archive reachable, database reachable, every collector's heartbeat fresh; 503 naming what is not."""
    config = _ext("config")
    engine = _ext("monitor").engine
    status, body = readiness(
        [
            check_archive(config.rrd_dir, config.rrdcached, write=False),
            check_database(engine),
            check_heartbeat(engine, _ext("clock")(), config.watchdog.max_age),
        ]
    )
    return jsonify(body), status

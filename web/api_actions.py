"""The JSON API's actions: acknowledge a metric, end/extend/cancel a downtime; and a metric's history.

Registered under ``/api`` next to :mod:`web.api`, with its rules: writes need a login and take only
``application/json`` bodies (which a cross-site form cannot send, so no CSRF token).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dateutil import tz as dt_tz
from flask import Blueprint, Response, abort, g, jsonify, request

from alarms.history import metric_history
from alarms.store import to_metric_state
from downtime.models import Downtime
from downtime.store import DowntimeError, DowntimeStore
from web.acks import AckRefused, acknowledge, clean_comment
from web.context import monitor, now
from web.downtime_io import downtime_dict, when
from web.downtimes import DOWNTIME_ID, existing
from web.params import ParamError, int_param, metric_id

bp = Blueprint("api_actions", __name__, url_prefix="/api")


def _body() -> dict[str, Any]:
    if not request.is_json:
        abort(415, "send the request as application/json")
    body = request.get_json(silent=True)
    if body is None and not request.get_data():
        return {}
    if not isinstance(body, dict):
        raise ParamError("body", "must be a JSON object")
    return body


@bp.post("/metrics/<slurper>/<metric>/ack")
def ack(slurper: str, metric: str) -> tuple[Response, int]:
    """Acknowledge a metric's problem: ``{"comment": "..."}``; the author is the logged-in user."""
    mid = metric_id(slurper, metric)
    comment = clean_comment(_body().get("comment"))
    try:
        rec = acknowledge(mid, comment)
    except AckRefused as exc:
        abort(409, str(exc))
    st = to_metric_state(rec)
    return jsonify({k: getattr(st, k) for k in st.__dataclass_fields__}), 201


@bp.get("/metrics/<slurper>/<metric>/history")
def history(slurper: str, metric: str) -> Response:
    """State changes, notifications and acks of a metric, newest first (``limit``, default 50)."""
    mid = metric_id(slurper, metric)
    limit = int_param(request.args, "limit", 50, 1, 1000)
    return jsonify([e.as_dict() for e in metric_history(monitor().engine, mid, limit)])


@bp.post(f"/downtimes/{DOWNTIME_ID}/end")
def end(downtime_id: int) -> Response:
    """End a downtime now (an upcoming one is then over before it began)."""
    _body()
    return _act(downtime_id, lambda s, _: s.end(downtime_id, now=now(), author=g.user))


@bp.post(f"/downtimes/{DOWNTIME_ID}/extend")
def extend(downtime_id: int) -> Response:
    """Move a downtime's end: ``{"end": "+2h"}`` (times without an offset in the downtime's zone)."""
    body = _body()

    def action(s: DowntimeStore, d: Downtime) -> Downtime:
        text = body.get("end")
        if not isinstance(text, str | int | float) or isinstance(text, bool) or str(text).strip() == "":
            raise ParamError("end", "give the new end, e.g. +2h or 2026-11-22 12:00")
        new_end = when("end", str(text), now(), dt_tz.gettz(d.tz))
        return s.extend(downtime_id, new_end, author=g.user, now=now())

    return _act(downtime_id, action)


@bp.post(f"/downtimes/{DOWNTIME_ID}/cancel")
def cancel(downtime_id: int) -> Response:
    """Cancel a downtime: ``{"reason": "..."}`` (kept in its audit trail)."""
    reason = _body().get("reason")

    def action(s: DowntimeStore, _: Downtime) -> Downtime:
        if not isinstance(reason, str) or not reason.strip():
            raise ParamError("reason", "say why the downtime is cancelled")
        return s.cancel(downtime_id, reason=reason.strip(), author=g.user, now=now())

    return _act(downtime_id, action)


def _act(downtime_id: int, action: Callable[[DowntimeStore, Downtime], Downtime]) -> Response:
    s, d = existing(downtime_id)
    try:
        action(s, d)
    except DowntimeError as exc:  # e.g. extending a cancelled downtime: say why
        abort(409, str(exc))
    return jsonify(downtime_dict(s.get(downtime_id) or d, now(), audit=s.audit(downtime_id)))

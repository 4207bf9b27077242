"""Acknowledging a metric's problem from the web: the metric page's form (the JSON API is in
:mod:`web.api_actions`). Both need a login; the form also a CSRF token, like the downtime forms."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, g, redirect, request, url_for

from alarms.engine import MetricRecord
from alarms.store import AlarmStore
from web.context import error_response, monitor, now
from web.params import ParamError, metric_id

bp = Blueprint("acks", __name__)
MAX_COMMENT = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class AckRefused(Exception):
    """The metric has nothing to acknowledge (no alarm state, or OK); the message says which."""


def clean_comment(text: object) -> str:
    """The comment as stored: required, control characters removed, at most 2000 characters."""
    comment = _CONTROL.sub(" ", text if isinstance(text, str) else "").strip()
    if not comment:
        raise ParamError("comment", "say what is being done about it (the comment is shown to everyone)")
    if len(comment) > MAX_COMMENT:
        raise ParamError("comment", f"at most {MAX_COMMENT} characters")
    return comment


def acknowledge(mid: str, comment: str) -> MetricRecord:
    """File an ack for ``mid`` by the signed-in user; AckRefused when there is nothing to acknowledge."""
    if g.user is None:
        abort(401)
    if monitor().latest.get(mid) is None:
        abort(404, f"no such metric: {mid}")
    try:
        return AlarmStore(monitor().engine).file_ack(mid, g.user, comment, now())
    except (LookupError, ValueError) as exc:
        raise AckRefused(str(exc.args[0])) from None


@bp.post("/ack/<slurper>/<metric>")
def ack_form(slurper: str, metric: str) -> Any:
    """The metric page's form: acknowledge, then back to the metric page."""
    mid = metric_id(slurper, metric)
    try:
        acknowledge(mid, clean_comment(request.form.get("comment", "")))
    except AckRefused as exc:
        return error_response(409, str(exc))
    keep: dict[str, Any] = {k: v for k, v in request.args.items() if k in ("tz", "period", "start", "end")}
    return redirect(url_for("graphs.metric_page", slurper=slurper, metric=metric, **keep) + "#ack", 303)

"""Downtime pages: list, detail with audit trail, file (with a preview of matched metrics), extend, end."""

from __future__ import annotations

import importlib
from typing import Any

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for

from web.app import monitor, now
from web.downtime_io import KINDS, SEVERITIES, downtime_dict, parse_downtime, scope_preview, when
from web.params import ParamError, choice

bp = Blueprint("downtimes", __name__)
WHICH = ("active", "upcoming", "past", "all")


def _store() -> Any:
    store = monitor().store()
    if store is None:
        abort(501, "this build has no downtime store")
    return store


@bp.get("/downtimes")
def index() -> str:
    which = choice(request.args, "which", WHICH, "active")
    rows = [downtime_dict(d) for d in _store().list(which, now())]
    return render_template("web/downtimes.html", rows=rows, which=which, tabs=WHICH)


@bp.get("/downtimes/<int:downtime_id>")
def detail(downtime_id: int) -> str:
    d = _store().get(downtime_id)
    if d is None:
        abort(404, f"no downtime #{downtime_id}")
    row = downtime_dict(d, audit=_store().audit(downtime_id))
    matched = (
        scope_preview(" ".join(row.get("scope") or []), monitor().archive.metric_ids())
        if row.get("scope")
        else {"count": 0, "metrics": []}
    )
    return render_template("web/downtime.html", d=row, matched=matched, error=None)


@bp.route("/downtimes/new", methods=["GET", "POST"])
def new() -> Any:
    """GET: the form. POST action=preview: the metrics the scope matches. POST action=save: file it."""
    if g.user is None and request.method == "GET":
        abort(401)
    form = {
        k: request.values.get(k, "")
        for k in ("scope", "start", "end", "reason", "kind", "severity", "ticket", "rrule")
    }
    form["kind"] = form["kind"] or "planned"
    form["severity"] = form["severity"] or "outage"
    if request.method == "GET":
        return render_template(
            "web/downtime_form.html", form=form, preview=None, error=None, kinds=KINDS, severities=SEVERITIES
        )
    try:
        data = parse_downtime(form, now())
        preview = scope_preview(form["scope"], monitor().archive.metric_ids())
    except ParamError as exc:
        return render_template(
            "web/downtime_form.html", form=form, preview=None, error=exc, kinds=KINDS, severities=SEVERITIES
        ), 400
    if request.form.get("action") != "save":
        return render_template(
            "web/downtime_form.html",
            form=form,
            preview=preview,
            error=None,
            data=data,
            kinds=KINDS,
            severities=SEVERITIES,
        )
    d = _store().add(**data.store_kwargs(author=g.user, now=now()))
    new_id = d if isinstance(d, int) else downtime_dict(d)["id"]
    return redirect(url_for(".detail", downtime_id=new_id), 303)


@bp.post("/downtimes/<int:downtime_id>/extend")
def extend(downtime_id: int) -> Any:
    new_end = when("end", request.form.get("end", ""), now())
    return _act(downtime_id, lambda s: s.extend(downtime_id, new_end, author=g.user, now=now()))


@bp.post("/downtimes/<int:downtime_id>/end")
def end(downtime_id: int) -> Any:
    return _act(downtime_id, lambda s: s.end(downtime_id, now=now(), author=g.user))


@bp.post("/downtimes/<int:downtime_id>/cancel")
def cancel(downtime_id: int) -> Any:
    reason = request.form.get("reason", "").strip()
    if not reason:
        raise ParamError("reason", "say why the downtime is cancelled")
    return _act(downtime_id, lambda s: s.cancel(downtime_id, reason=reason, author=g.user, now=now()))


def _act(downtime_id: int, action: Any) -> Any:
    store = _store()
    if store.get(downtime_id) is None:
        abort(404, f"no downtime #{downtime_id}")
    try:
        action(store)
    except ValueError as exc:  # the store refuses e.g. extending an ended downtime; say why
        row = downtime_dict(store.get(downtime_id), audit=store.audit(downtime_id))
        return render_template("web/downtime.html", d=row, matched=None, error=str(exc)), 409
    return redirect(url_for(".detail", downtime_id=downtime_id), 303)


@bp.get("/downtimes.ics")
def ical() -> Response:
    """Every downtime of the last 30 and next 365 days as an iCalendar feed."""
    dt_ical: Any = importlib.import_module("downtime.ical")
    t = now()
    windows = monitor().windows(t - 30 * 86400, t + 365 * 86400)
    body = dt_ical.to_ical(windows)
    return Response(body, mimetype="text/calendar")

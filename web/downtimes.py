"""Downtime pages: list, detail with audit trail, file (with a preview of matched metrics), extend, end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from dateutil import tz as dt_tz
from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for

from downtime.ical import to_ical
from downtime.models import Downtime
from downtime.store import DowntimeError, DowntimeStore, Which
from web.context import monitor, now
from web.downtime_io import (
    KINDS,
    SEVERITIES,
    DowntimeInput,
    downtime_dict,
    field_error,
    form_zone,
    parse_downtime,
    scope_preview,
    when,
    zone_of,
)
from web.params import ParamError, choice

bp = Blueprint("downtimes", __name__)
WHICH = ("active", "upcoming", "past", "all")
FORM_FIELDS = ("scope", "start", "end", "reason", "kind", "severity", "ticket", "rrule", "tz")
#: a downtime id in a URL; a number past SQLite's 64-bit integers is no downtime's (404), not a crash
DOWNTIME_ID = f"<int(max={2**63 - 1}):downtime_id>"


def store() -> DowntimeStore:
    return monitor().store()


def store_error(exc: DowntimeError) -> ParamError:
    """The store's refusal as a ParamError naming the field it is about."""
    return field_error(exc)


@bp.get("/downtimes")
def index() -> str:
    which = choice(request.args, "which", WHICH, "active")
    t = now()
    rows = [downtime_dict(d, t) for d in store().list(cast(Which, which), t)]
    return render_template("web/downtimes.html", rows=rows, which=which, tabs=WHICH)


def _detail_page(d: Downtime, error: str | None = None) -> str:
    row = downtime_dict(d, now(), audit=store().audit(d.id))
    matched = scope_preview(" ".join(row["scope"]), monitor().metric_ids()) if row["scope"] else None
    return render_template("web/downtime.html", d=row, matched=matched, error=error)


@bp.get(f"/downtimes/{DOWNTIME_ID}")
def detail(downtime_id: int) -> str:
    d = store().get(downtime_id)
    if d is None:
        abort(404, f"no downtime #{downtime_id}")
    return _detail_page(d)


def _form(form: dict[str, str], status: int = 200, **kw: Any) -> tuple[str, int]:
    kw.setdefault("preview", None)
    kw.setdefault("error", None)
    page = render_template("web/downtime_form.html", form=form, kinds=KINDS, severities=SEVERITIES, **kw)
    return page, status


@bp.route("/downtimes/new", methods=["GET", "POST"])
def new() -> Any:
    """GET: the form. POST action=preview: the metrics the scope matches. POST action=save: file it."""
    if g.user is None and request.method == "GET":
        abort(401)
    form = {k: request.values.get(k, "").strip() for k in FORM_FIELDS}
    form["kind"] = form["kind"] or "planned"
    form["severity"] = form["severity"] or "outage"
    form["tz"] = form["tz"] or form_zone()
    if request.method == "GET":
        return _form(form)
    try:
        data = parse_downtime(form, now())
        preview = scope_preview(form["scope"], monitor().metric_ids())
    except ParamError as exc:
        return _form(form, 400, error=exc)
    if request.form.get("action") != "save":
        return _form(form, preview=preview, data=data, zone=zone_of(data.tz))
    try:
        d = _save(data)
    except ParamError as exc:
        return _form(form, 400, error=exc)
    return redirect(url_for(".detail", downtime_id=d.id), 303)


def _save(data: DowntimeInput) -> Downtime:
    try:
        return store().add(**data.store_kwargs(author=g.user, now=now()))
    except DowntimeError as exc:
        raise store_error(exc) from None


@bp.post(f"/downtimes/{DOWNTIME_ID}/extend")
def extend(downtime_id: int) -> Any:
    def action(s: DowntimeStore, d: Downtime) -> Downtime:
        zone = dt_tz.gettz(d.tz)  # as stored: the CLI keeps $TZ as it is (:Europe/Zurich)
        new_end = when("end", request.form.get("end", "") or "now", now(), zone)
        return s.extend(downtime_id, new_end, author=g.user, now=now())

    return _act(downtime_id, action)


@bp.post(f"/downtimes/{DOWNTIME_ID}/end")
def end(downtime_id: int) -> Any:
    return _act(downtime_id, lambda s, _: s.end(downtime_id, now=now(), author=g.user))


@bp.post(f"/downtimes/{DOWNTIME_ID}/cancel")
def cancel(downtime_id: int) -> Any:
    reason = request.form.get("reason", "").strip()

    def action(s: DowntimeStore, _: Downtime) -> Downtime:
        if not reason:
            raise ParamError("reason", "say why the downtime is cancelled")
        return s.cancel(downtime_id, reason=reason, author=g.user, now=now())

    return _act(downtime_id, action)


def existing(downtime_id: int) -> tuple[DowntimeStore, Downtime]:
    """The store and downtime ``downtime_id``, for a change to it; a 404 when there is none."""
    s = store()
    d = s.get(downtime_id)
    if d is None:
        abort(404, f"no downtime #{downtime_id}")
    return s, d


def _act(downtime_id: int, action: Callable[[DowntimeStore, Downtime], Downtime]) -> Any:
    s, d = existing(downtime_id)
    try:
        action(s, d)
    except ParamError as exc:  # a bad field: the page again, its forms and what was wrong
        return _detail_page(d, error=f"{exc.parameter}: {exc.message}"), 400
    except DowntimeError as exc:  # e.g. extending a cancelled downtime: say why
        return _detail_page(d, error=str(exc)), 409
    return redirect(url_for(".detail", downtime_id=downtime_id), 303)


@bp.get("/downtimes.ics")
def ical() -> Response:
    """Every downtime occurrence of the last 30 and next 365 days as an iCalendar feed."""
    t = now()
    windows = monitor().windows(t - 30 * 86400, t + 365 * 86400)
    return Response(to_ical(windows, now=t), mimetype="text/calendar")

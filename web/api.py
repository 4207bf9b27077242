"""The JSON API (described by :mod:`web.openapi`): metrics, series, alarms, downtimes."""

from __future__ import annotations

import csv
import fnmatch
import io
import logging
from typing import Any, cast

from flask import Blueprint, Response, abort, g, jsonify, request

from alarms.catalogue import UNKNOWN_META, MetricMeta
from downtime.store import DowntimeError, Which
from rrd.archive import ArchiveError
from rrd.spec import MetricNotFound, Series
from web.context import monitor, now
from web.data import band_label, thresholds
from web.downtime_io import DowntimeInput, downtime_dict, parse_downtime, scope_preview
from web.downtimes import DOWNTIME_ID, WHICH, store, store_error
from web.latest import RATE_TYPES
from web.openapi import openapi
from web.params import CFS, ParamError, choice, int_param, metric_id, time_range
from web.rpn import RPNError, field_ids
from web.rpn import series as rpn_series
from web.units import normalize, rate_unit

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(openapi())


@bp.get("/metrics")
def metrics() -> Response:
    """Every metric with its last value, time and state (``match``: a glob over ids)."""
    pattern = request.args.get("match", "*")
    ids = [m for m in monitor().metric_ids() if fnmatch.fnmatchcase(m, pattern)]
    ov = monitor().overview(ids)
    rows = [r for s in ov.slurpers for r in s.metrics]
    rows.sort(key=lambda r: r.metric_id)
    return jsonify(
        [
            {
                "id": r.metric_id,
                "value": r.value,
                "time": r.time,
                "display": r.display,
                "unit": r.unit,
                "base": r.base,
                "graph": r.group,
                "state": r.state,
                "since": r.since,
                "rule": r.rule,
                "icon": r.icon,
                "label": r.label,
                "warning": r.warning,
                "critical": r.critical,
                "downtime_id": r.downtime_id,
            }
            for r in rows
        ]
    )


@bp.get("/metrics/<slurper>/<metric>/series")
def series(slurper: str, metric: str) -> Response:
    """Values between ``start`` and ``end`` (or ``period``) as JSON columns, or CSV with ``format=csv``."""
    fmt = choice(request.args, "format", ("json", "csv"), "json")
    return _series(metric_id(slurper, metric), fmt)


@bp.get("/metrics/<slurper>/<metric>/series.csv")
def series_csv(slurper: str, metric: str) -> Response:
    return _series(metric_id(slurper, metric), "csv")


def _series(mid: str, fmt: str) -> Response:
    tr = time_range(request.args, now())
    cf = choice(request.args, "cf", CFS, "AVERAGE")
    resolution = int_param(request.args, "resolution", 0, 0, 86400 * 366) or None
    try:
        s = monitor().archive.fetch(mid, tr.start, tr.end, cf, resolution)
    except MetricNotFound as exc:
        abort(404, str(exc))
    except ArchiveError as exc:
        log.warning("series of %s failed: %s", mid, exc)  # the message names server paths
        abort(500, "the series could not be read; the details are in the server log")
    # a value is stamped with the end of its interval; rrdtool returns one interval past ``end``
    points = s.points()
    points = [(t, v) for t, v in points if t <= max(tr.end, s.start + s.step)]
    times, values = [t for t, _ in points], [v for _, v in points]
    meta = monitor().meta().get(mid, UNKNOWN_META)
    unit = rate_unit(meta.unit) if meta.ds_type in RATE_TYPES else normalize(meta.unit)
    values, cdef = _drawn(s, meta, values, (tr.start, tr.end, cf, resolution))
    points = list(zip(times, values, strict=True))
    if fmt == "csv":  # the unit on every row, so a spreadsheet or a concatenation of files keeps it
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["time", mid, "unit"])
        w.writerows([t, "" if v is None else repr(v), unit] for t, v in points)
        resp = Response(buf.getvalue(), mimetype="text/csv")
        resp.headers["Content-Disposition"] = f'attachment; filename="{mid.replace("/", "_")}.csv"'
        return resp
    return jsonify(
        {
            "id": mid,
            "unit": unit,
            "base": meta.base,
            "cdef": cdef,
            "negative": meta.negative,
            "start": tr.start,
            "end": tr.end,
            "step": s.step,
            "cf": cf,
            "times": times,
            "values": values,
        }
    )


def _drawn(
    s: Series, meta: MetricMeta, values: list[float | None], fetch: tuple[int, int, str, int | None]
) -> tuple[list[float | None], str]:
    """The values as they are drawn (Munin's cdef applied) and the cdef applied ("" when none was).

    A cdef that is refused, or whose fields cannot be read in step with this one, leaves the values
    raw with a warning in the log: the series is still served.
    """
    mid = s.metric_id
    if not meta.cdef:
        return values, ""
    try:
        columns: dict[str, list[float | None]] = {}
        for field, other in field_ids(mid, meta.cdef).items():
            try:
                o = s if other == mid else monitor().archive.fetch(other, *fetch)
            except MetricNotFound:
                raise RPNError(
                    f"cdef {meta.cdef[:60]!r}: unknown field {field!r} (no metric {other})"
                ) from None
            if (o.start, o.step) != (s.start, s.step) or len(o.values) < len(values):
                raise RPNError(f"field {field!r} ({other}) is not fetched in step with {mid}")
            columns[field] = o.values[: len(values)]
        return rpn_series(meta.cdef, columns), meta.cdef
    except (RPNError, ArchiveError) as exc:
        log.warning("cdef of %s not applied, drawn raw: %s", mid, exc)
        return values, ""


@bp.get("/metrics/<slurper>/<metric>/annotations")
def graph_annotations(slurper: str, metric: str) -> Response:
    """Downtime bands and threshold lines for a metric's graph between ``start`` and ``end``."""
    mid = metric_id(slurper, metric)
    tr = time_range(request.args, now())
    state = monitor().states().get(mid)
    rules = thresholds(state.warning, state.critical) if state else []
    bands = monitor().bands([mid], tr.start, tr.end)
    return jsonify(
        {
            "bands": [
                {
                    "downtime_id": w.downtime_id,
                    "start": w.start,
                    "end": w.end,
                    "severity": w.severity,
                    "label": band_label(w),
                    "reason": w.reason,
                    "author": w.author,
                }
                for w, _ in bands
            ],
            "thresholds": [{"value": r.value, "level": r.level, "label": r.label} for r in rules],
        }
    )


@bp.get("/alarms")
def alarms() -> Response:
    """Alarm states; ``all=1`` includes OK metrics."""
    everything = request.args.get("all") in ("1", "true")
    out = []
    for s in sorted(monitor().states().values(), key=lambda s: s.metric_id):
        if everything or s.state != "OK":
            out.append({k: getattr(s, k) for k in s.__dataclass_fields__})
    return jsonify(out)


@bp.get("/downtimes")
def list_downtimes() -> Response:
    which = choice(request.args, "which", WHICH, "all")
    t = now()
    return jsonify([downtime_dict(d, t) for d in store().list(cast(Which, which), t)])


@bp.get(f"/downtimes/{DOWNTIME_ID}")
def get_downtime(downtime_id: int) -> Response:
    d = store().get(downtime_id)
    if d is None:
        abort(404, f"no downtime #{downtime_id}")
    return jsonify(downtime_dict(d, now(), audit=store().audit(downtime_id)))


@bp.post("/downtimes")
def create_downtime() -> tuple[Response, int]:
    """File a downtime from a JSON body; the author is the logged-in user."""
    if not request.is_json:
        abort(415, "send the downtime as application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ParamError("body", "must be a JSON object")
    t = now()
    data: DowntimeInput = parse_downtime({k: _text(v) for k, v in body.items()}, t)
    try:
        d = store().add(**data.store_kwargs(author=g.user, now=t))
    except DowntimeError as exc:
        raise store_error(exc) from None
    return jsonify(downtime_dict(d, t)), 201


@bp.get("/downtimes/preview")
def preview() -> Response:
    """The metric ids a scope (comma or space separated globs) matches, before saving a downtime."""
    scope = request.args.get("scope", "")
    return jsonify(scope_preview(scope, monitor().metric_ids()))


def _text(v: Any) -> str:
    if isinstance(v, list):
        return " ".join(str(x) for x in v)
    return "" if v is None else str(v)

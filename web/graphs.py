"""Graph pages per metric and per slurper group, and their PNG/SVG images."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, abort, render_template, request, url_for

from rrd.graph import GraphError, GraphSpec, Rule
from rrd.names import MetricIdError, check_id
from web.app import monitor, now
from web.data import MetricRow, group_of, thresholds
from web.params import PERIODS, TimeRange, choice, int_param, metric_id, time_range

log = logging.getLogger(__name__)
bp = Blueprint("graphs", __name__)
MAX_LINES = 12
SIZES = {"small": (400, 120), "medium": (700, 220), "large": (1100, 360)}


def _metric_row(mid: str) -> MetricRow:
    row = monitor().row(mid)
    if row is None:
        abort(404, f"no such metric: {mid}")
    return row


@bp.get("/graph/<slurper>/<metric>")
def metric_page(slurper: str, metric: str) -> str:
    mid = metric_id(slurper, metric)
    row = _metric_row(mid)
    tr = time_range(request.args, now())
    bands = monitor().bands([mid], tr.start, tr.end)
    rules = thresholds(row.warning, row.critical)
    return render_template(
        "web/graph.html",
        row=row,
        ids=[mid],
        tr=tr,
        bands=bands,
        rules=rules,
        img=_img_urls("graphs.metric_image", tr, slurper=slurper, metric=metric),
        periods=PERIODS,
        title=mid,
        group_url=_group_link(row),
    )


def _group_link(row: MetricRow) -> str:
    return url_for(".slurper_page", slurper=row.slurper, group=row.group) + f"#g-{row.group}"


@bp.get("/graph/<slurper>")
def slurper_page(slurper: str) -> str:
    """Every graph of a slurper: one per graph key (metrics sharing a name prefix)."""
    ids = _slurper_ids(slurper)
    tr = time_range(request.args, now())
    rows = monitor().overview(ids).slurpers
    if not rows:
        abort(404, f"no metrics for slurper {slurper}")
    only = request.args.get("group")
    groups = {k: v for k, v in rows[0].groups().items() if only is None or k == only}
    images = {k: _img_urls("graphs.group_image", tr, slurper=slurper, group=k) for k in groups}
    return render_template(
        "web/slurper.html", srow=rows[0], groups=groups, images=images, tr=tr, periods=PERIODS
    )


def _slurper_ids(slurper: str) -> list[str]:
    try:
        check_id(f"{slurper}/x")
    except MetricIdError:
        abort(404, "not a slurper id")
    return [m for m in monitor().metric_ids() if m.split("/", 1)[0] == slurper]


def _img_urls(endpoint: str, tr: TimeRange, **kw: Any) -> dict[str, str]:
    """PNG and SVG URLs of a graph; url_for puts every non-path argument (e.g. group) in the query."""
    q: dict[str, Any] = {"period": tr.period} if tr.period != "custom" else {"start": tr.start, "end": tr.end}
    return {fmt: url_for(endpoint, fmt=fmt, **kw, **q) for fmt in ("png", "svg")}


@bp.get("/img/<slurper>/<metric>.<any(png, svg):fmt>")
def metric_image(slurper: str, metric: str, fmt: str) -> Response:
    mid = metric_id(slurper, metric)
    state = monitor().states().get(mid)
    rules = thresholds(state.warning, state.critical) if state else []
    return _image([mid], fmt, mid, rules)


@bp.get("/img/<slurper>.<any(png, svg):fmt>")
def group_image(slurper: str, fmt: str) -> Response:
    group = request.args.get("group", "")
    ids = [m for m in _slurper_ids(slurper) if group_of(m.split("/", 1)[1]) == group][:MAX_LINES]
    if not ids:
        abort(404, f"no metrics in group {group!r} of slurper {slurper}")
    states = monitor().states()
    rules: dict[tuple[float, str], Rule] = {}
    for mid in ids:
        st = states.get(mid)
        for r in thresholds(st.warning, st.critical) if st else []:
            rules.setdefault((r.value, r.level), r)
    title = f"{slurper} {group}".strip()
    return _image(ids, fmt, title, list(rules.values()))


def _image(ids: Sequence[str], fmt: str, title: str, rules: Sequence[Rule]) -> Response:
    tr = time_range(request.args, now())
    if tr.period != "custom":  # round "now" so period graphs can be served from the cache
        step = monitor().archive.step
        tr = TimeRange(tr.start - tr.end % step, tr.end - tr.end % step, tr.period)
    width, height = SIZES[choice(request.args, "size", tuple(SIZES), "medium")]
    width = int_param(request.args, "width", width, 100, 4000)
    height = int_param(request.args, "height", height, 50, 2000)
    bands = [b for _, b in monitor().bands(ids, tr.start, tr.end)]
    labels = tuple(m.split("/", 1)[1] for m in ids) if len(ids) > 1 else ()
    try:
        spec = GraphSpec(
            tuple(ids),
            tr.start,
            tr.end,
            width,
            height,
            "PNG" if fmt == "png" else "SVG",
            title,
            labels,
            tuple(bands),
            tuple(rules),
        )
        out = monitor().renderer.render(spec)
    except GraphError as exc:
        if "no such metric" in str(exc):
            abort(404, str(exc))
        log.warning("graph of %s failed: %s", ", ".join(ids), exc)  # the message names server paths
        abort(500, "the graph could not be drawn; the details are in the server log")
    resp = Response(out.data, mimetype=out.content_type)
    resp.headers["Cache-Control"] = "private, max-age=30"
    resp.headers["X-Graph-Cache"] = "hit" if out.cached else "miss"
    return resp

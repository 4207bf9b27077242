"""Graph pages per metric and per slurper group, and their PNG/SVG images."""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, render_template, request, url_for

from alarms.catalogue import MetricMeta
from rrd.graphargs import GraphError, GraphSpec, Rule, check_zone
from rrd.names import MetricIdError, check_id
from rrd.spec import MetricNotFound
from web.context import ext, monitor, now
from web.data import MetricRow, group_of, thresholds
from web.params import PERIODS, ParamError, TimeRange, choice, input_time, int_param, metric_id, time_range
from web.rpn import RPNError, field_ids, to_rrd
from web.units import unprefixed

log = logging.getLogger(__name__)
bp = Blueprint("graphs", __name__)
MAX_LINES = 12
SIZES = {"small": (400, 120), "medium": (700, 220), "large": (1100, 360)}


VIEW_KEYS = ("period", "start", "end", "tz", "group")


@bp.app_template_global()
def view_query(**changes: str | None) -> str:
    """The page's view (period or start/end, tz, group) as a query string, with ``changes`` (None drops)."""
    q = {k: v for k, v in request.args.items() if k in VIEW_KEYS}
    for k, v in changes.items():
        if v is None:
            q.pop(k, None)
        else:
            q[k] = v
    return "?" + urlencode(q) if q else ""


@bp.app_template_filter("input_time_in")
def input_time_in(t: float, zone: str) -> str:
    """A time as the range form shows it, in the page's zone."""
    return input_time(t, zoneinfo.ZoneInfo(zone))


@bp.app_template_filter("row_value")
def row_value(row: MetricRow) -> str:
    """A row's value with its unit and prefix (``69.6 MiB``), as the overview shows it."""
    return row.display


@bp.app_template_global("row_base")
def _row_base(row: MetricRow) -> int:
    return _base(row)


def page_zone() -> str:
    """The zone the page states (``tz`` in the URL, UTC by default): its times, axes and images."""
    name = request.args.get("tz") or "UTC"
    try:
        return check_zone(name)
    except GraphError as exc:
        raise ParamError("tz", str(exc)) from None


def zone_choices(zone: str) -> list[tuple[str, str]]:
    """The picker's zones as (value, text): UTC, the site's, the one shown; the browser's is added by JS."""
    site = ext("config").web.zone
    out = [("UTC", "UTC")]
    if site != "UTC":
        out.append((site, f"{site} (site)"))
    if zone not in (z for z, _ in out):
        out.append((zone, zone))
    return out


def _range(zone: str) -> TimeRange:
    return time_range(request.args, now(), zone=zoneinfo.ZoneInfo(zone))


def _metric_row(mid: str) -> MetricRow:
    row = monitor().row(mid)
    if row is None:
        abort(404, f"no such metric: {mid}")
    return row


@bp.get("/graph/<slurper>/<metric>")
def metric_page(slurper: str, metric: str) -> str:
    mid = metric_id(slurper, metric)
    row = _metric_row(mid)
    zone = page_zone()
    tr = _range(zone)
    bands = monitor().bands([mid], tr.start, tr.end)
    rules = thresholds(row.warning, row.critical)
    return render_template(
        "web/graph.html",
        row=row,
        ids=[mid],
        tr=tr,
        zone=zone,
        zones=zone_choices(zone),
        bands=bands,
        rules=rules,
        img=_img_urls("graphs.metric_image", tr, zone, slurper=slurper, metric=metric),
        periods=PERIODS,
        title=mid,
        group_url=_group_link(row, zone),
        history=_history(mid, tr),
    )


def _history(mid: str, tr: TimeRange) -> Any:
    from alarms.history import metric_history

    try:
        return metric_history(monitor().engine, mid, limit=50)
    except Exception as exc:  # an unmigrated or unreachable database: the page without the section
        log.warning("alarm history of %s unavailable: %s", mid, exc)
        return None


def _group_link(row: MetricRow, zone: str) -> str:
    q: dict[str, Any] = {"tz": zone} if zone != "UTC" else {}
    return url_for(".slurper_page", slurper=row.slurper, group=row.group, **q) + f"#g-{row.group}"


@bp.get("/graph/<slurper>")
def slurper_page(slurper: str) -> str:
    """Every graph of a slurper: one per graph key (metrics sharing a name prefix)."""
    ids = _slurper_ids(slurper)
    zone = page_zone()
    tr = _range(zone)
    rows = monitor().overview(ids).slurpers
    if not rows:
        abort(404, f"no metrics for slurper {slurper}")
    only = request.args.get("group")
    groups = {k: v for k, v in rows[0].groups().items() if only is None or k == only}
    graphs = {k: _by_unit(v) for k, v in groups.items()}
    images = {
        (k, unit): _img_urls("graphs.group_image", tr, zone, slurper=slurper, group=k, unit=unit)
        for k, by_unit in graphs.items()
        for unit in by_unit
    }
    return render_template(
        "web/slurper.html",
        srow=rows[0],
        groups=groups,
        graphs=graphs,
        images=images,
        tr=tr,
        zone=zone,
        zones=zone_choices(zone),
        periods=PERIODS,
    )


def _by_unit(rows: Sequence[MetricRow]) -> dict[str, list[MetricRow]]:
    """A graph group's rows split by unit: one graph per unit, so every axis has one unit."""
    out: dict[str, list[MetricRow]] = {}
    for r in rows:
        out.setdefault(r.unit, []).append(r)
    return out


def _slurper_ids(slurper: str) -> list[str]:
    try:
        check_id(f"{slurper}/x")
    except MetricIdError:
        abort(404, "not a slurper id")
    return [m for m in monitor().metric_ids() if m.split("/", 1)[0] == slurper]


def _img_urls(endpoint: str, tr: TimeRange, zone: str, **kw: Any) -> dict[str, str]:
    """PNG and SVG URLs of a graph; url_for puts every non-path argument (e.g. group) in the query."""
    q: dict[str, Any] = {"period": tr.period} if tr.period != "custom" else {"start": tr.start, "end": tr.end}
    if zone != "UTC":
        q["tz"] = zone
    return {fmt: url_for(endpoint, fmt=fmt, **kw, **q) for fmt in ("png", "svg")}


@bp.get("/img/<slurper>/<metric>.<any(png, svg):fmt>")
def metric_image(slurper: str, metric: str, fmt: str) -> Response:
    mid = metric_id(slurper, metric)
    row = _metric_row(mid)
    # Munin's negative: the other half of the pair is drawn below the axis, as the page's chart does
    negative = monitor().meta().get(mid)
    partner = f"{slurper}/{negative.negative}" if negative and negative.negative else ""
    ids = [mid, partner] if partner and partner in monitor().metric_ids() else [mid]
    return _image(ids, fmt, mid, thresholds(row.warning, row.critical), row.unit, _base(row))


def _base(row: MetricRow) -> int:
    """1024 for a metric whose prefixes are IEC (Munin's ``graph_args --base 1024``), else 1000."""
    return 1024 if row.base == 1024 else 1000


@bp.get("/img/<slurper>.<any(png, svg):fmt>")
def group_image(slurper: str, fmt: str) -> Response:
    group = request.args.get("group", "")
    unit = request.args.get("unit")
    meta = monitor().meta()  # the graph key the collector recorded (MetricSpec.graph, Munin's graph)
    ids = [m for m in _slurper_ids(slurper) if _graph_key(m, meta) == group]
    ov = monitor().overview(ids).slurpers
    rows = sorted((r for s in ov for r in s.metrics), key=lambda r: r.name)
    if unit is None and rows:  # without ``unit``: the group's first unit, never two units on one axis
        unit = rows[0].unit
    rows = [r for r in rows if r.unit == unit][:MAX_LINES]
    if not rows:
        abort(404, f"no metrics in group {group!r} of slurper {slurper}")
    title = f"{slurper} {group}".strip()
    return _image([r.metric_id for r in rows], fmt, title, series_rules(rows), unit or "", _base(rows[0]))


def _graph_key(mid: str, meta: Mapping[str, MetricMeta]) -> str:
    """The graph a metric is drawn in, as its row says (``MetricRow.group``)."""
    known = meta.get(mid)
    return (known.graph if known else "") or group_of(mid.split("/", 1)[1])


def series_rules(rows: Sequence[MetricRow]) -> list[Rule]:
    """The threshold lines of a graph's series; with several series each line names its own, since a
    bare "warning ~:10" would not say whose it is."""
    named = len(rows) > 1
    return [
        Rule(rule.value, f"{r.name} {rule.label}" if named else rule.label, rule.level)
        for r in rows
        for rule in thresholds(r.warning, r.critical)
    ]


def drawing(ids: Sequence[str], meta: Mapping[str, MetricMeta]) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    """Per metric of a graph: its cdef as rrdtool RPN over the graph's DEFs (``v0``...; "" to draw it
    raw) and whether it is drawn mirrored (another metric of the graph names it as its ``negative``).

    A cdef that is refused or names a field outside the graph is drawn raw, with a warning in the log.
    """
    defs = {mid: f"v{i}" for i, mid in enumerate(ids)}
    cdefs: list[str] = []
    for mid in ids:
        expr = meta[mid].cdef if mid in meta else ""
        try:
            names = field_ids(mid, expr) if expr else {}
            missing = [m for m in names.values() if m not in defs]
            if missing:
                raise RPNError(f"cdef {expr[:60]!r} needs {', '.join(missing)}, not in this graph")
            cdefs.append(to_rrd(expr, {f: defs[m] for f, m in names.items()}) if expr else "")
        except RPNError as exc:
            log.warning("cdef of %s not applied, drawn raw: %s", mid, exc)
            cdefs.append("")
    partners = {f"{m.split('/', 1)[0]}/{meta[m].negative}" for m in ids if m in meta and meta[m].negative}
    return tuple(cdefs), tuple(mid in partners for mid in ids)


def _image(
    ids: Sequence[str], fmt: str, title: str, rules: Sequence[Rule], unit: str = "", base: int = 1000
) -> Response:
    zone = page_zone()
    tr = _range(zone)
    if tr.period != "custom":  # round "now" so period graphs can be served from the cache
        step = monitor().archive.step
        tr = TimeRange(tr.start - tr.end % step, tr.end - tr.end % step, tr.period)
    width, height = SIZES[choice(request.args, "size", tuple(SIZES), "medium")]
    width = int_param(request.args, "width", width, 100, 4000)
    height = int_param(request.args, "height", height, 50, 2000)
    bands = [b for _, b in monitor().bands(ids, tr.start, tr.end)]
    labels = tuple(m.split("/", 1)[1] for m in ids) if len(ids) > 1 else ()
    cdefs, negated = drawing(ids, monitor().meta())
    scale, unit, base = unprefixed(1.0, unit, base)  # MiB drawn as B: rrdtool adds the only prefix
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
            zone=zone,
            unit=unit,
            base=base,
            scale=scale,
            cdefs=cdefs,
            negated=negated,
        )
        out = monitor().renderer.render(spec)
    except MetricNotFound as exc:
        abort(404, str(exc))
    except GraphError as exc:
        log.warning("graph of %s failed: %s", ", ".join(ids), exc)  # the message names server paths
        abort(500, "the graph could not be drawn; the details are in the server log")
    resp = Response(out.data, mimetype=out.content_type)
    resp.headers["Cache-Control"] = "private, max-age=30"
    resp.headers["X-Graph-Cache"] = "hit" if out.cached else "miss"
    return resp

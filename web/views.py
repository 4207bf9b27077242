"""HTML pages: the overview, sign-in and the configuration page (graph pages are in web/graphs.py)."""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    get_template_attribute,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from downtime.db import mask
from rrd.spec import ArchiveError, MetricNotFound
from web import spark
from web.context import ext, monitor
from web.data import ICON_LABELS, ICONS, MetricRow
from web.overview import PROBLEMS, Filter, Group, Item, Summary, digest, summary
from web.rows import Links, group_block, group_body, metric_items, slurper_block

log = logging.getLogger(__name__)
bp = Blueprint("views", __name__)
#: metrics listed with values under "needs attention" and "silenced" (the filter finds the rest)
MAX_LISTED = 500
#: items shown with values in open groups, per group and per page
MAX_GROUP_ITEMS = 200
MAX_OPEN_ITEMS = 2000
#: versions of the overview a refresh may name as ``since``
KEEP_VERSIONS = 32
_VERSIONS_LOCK = threading.Lock()
#: folded group lines by (link prefix, group, counts)
_FOLDED: dict[tuple[str, str, tuple[tuple[str, int], ...]], str] = {}
MAX_FOLDED_CACHE = 200_000
MAX_LINES = 12
SIZES = {"small": (400, 120), "medium": (700, 220), "large": (1100, 360)}
#: a path on this site: browsers read /\host as //host, and drop tabs and new lines
_LOCAL_PATH = re.compile(r"/(?![/\\])[^\x00-\x1f\x7f]*")


@bp.get("/")
def overview() -> str:
    """Slurpers, then their graph groups; what needs someone first, silenced problems apart."""
    want = _filter()
    parts, summ, version = _parts(want)
    return render_template(
        "web/overview.html",
        parts=parts,
        ov=summ,
        version=version,
        query=request.args.get("q", ""),
        problems=want.problems_only,
        states=",".join(sorted(want.icons)),
    )


@bp.get("/overview/changes")
def overview_changes() -> Response:
    """The parts of the overview that changed since ``since`` (a version an earlier answer gave).

    An unknown or missing ``since`` (another filter, a restarted server) gets every part.
    """
    parts, _, version = _parts(_filter())
    known = _versions().get(request.args.get("since", ""))
    changed = {pid: html for pid, html in parts if known is None or known.get(pid) != digest(html)}
    resp = jsonify({"version": version, "order": [pid for pid, _ in parts], "parts": changed})
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/overview/group/<path:key>")
def overview_group(key: str) -> str:
    """A collapsed group's items with values and its thumbnail (fetched when it is opened)."""
    slurper, _, graph = key.partition("/")
    summ = summary(monitor(), _filter())
    groups = [g for s in summ.slurpers if s.id == slurper for g in s.groups if g.graph == graph]
    if not groups:
        abort(404, f"no group {key!r} on the overview")
    group = groups[0]
    rows = monitor().rows([i.metric_id for i in group.items[:MAX_GROUP_ITEMS]])
    return group_body(group, rows, _svgs(), _links())


@bp.get("/overview/slurper/<slurper>")
def overview_slurper(slurper: str) -> str:
    """A folded slurper's group lines (fetched when it is opened)."""
    summ = summary(monitor(), _filter())
    found = [s for s in summ.slurpers if s.id == slurper]
    if not found:
        abort(404, f"no slurper {slurper!r} on the overview")
    svgs, links = _svgs(), _links()
    return "".join(_folded(g, svgs, links) for g in found[0].groups)


@bp.get("/overview/spark/<slurper>.svg")
def overview_spark(slurper: str) -> Response:
    """A graph group's last day as a sparkline (SVG; the page asks for it when its row is seen)."""
    graph = request.args.get("group")
    if graph is None:
        abort(400, "the sparkline needs ?group=<graph group of the slurper>")
    mon = monitor()
    summ = summary(mon)
    groups = [g for s in summ.slurpers if s.id == slurper for g in s.groups if g.graph == graph]
    if not groups:
        abort(404, f"no group {graph!r} of slurper {slurper!r}")
    ids = spark.spark_ids([i.metric_id for i in groups[0].items], mon.meta())
    start, end = spark.window(summ.now, mon.archive.step)
    try:
        series = spark.fetch_all(mon.archive.fetch, ids, start, end)
    except MetricNotFound as exc:  # a file removed since the listing
        abort(404, str(exc))
    except ArchiveError as exc:
        log.warning("sparkline of %s/%s failed: %s", slurper, graph, exc)  # names server paths
        abort(503, "the archive could not be read; the details are in the server log")
    label = f"{slurper}/{graph or '(ungrouped)'}: last 24 hours"
    resp = Response(spark.svg(series, label), mimetype="image/svg+xml")
    resp.headers["Cache-Control"] = "private, max-age=300"
    return resp


def _filter() -> Filter:
    args = request.args
    return Filter.parse(args.get("q", ""), args.get("state", ""), args.get("problems", "") in ("1", "on"))


def _svgs() -> dict[str, str]:
    icon = get_template_attribute("web/_icons.html", "icon")
    return {kind: str(icon(kind, ICON_LABELS[kind])) for kind in ICONS}


def _links() -> Links:
    root = url_for("graphs.metric_page", slurper="s", metric="m")[: -len("s/m")]
    slurper_root = url_for("graphs.slurper_page", slurper="s")[:-1]
    group_root = url_for(".overview_group", key="k")[:-1]
    slurper_body = url_for(".overview_slurper", slurper="s")[:-1]
    image_root = url_for("graphs.group_image", slurper="s", fmt="png")[: -len("s.png")]
    spark_root = url_for(".overview_spark", slurper="s")[: -len("s.svg")]
    return Links(root, slurper_root, group_root, slurper_body, image_root, spark_root)


def _parts(want: Filter) -> tuple[list[tuple[str, str]], Summary, str]:
    """The overview as parts (counts, attention, silenced, one per slurper), and its version."""
    summ = summary(monitor(), want)
    # open: groups that need someone, showing their problems; with a filter, every group it kept,
    # showing what it kept (within a budget of items); "all N metrics" loads the rest on demand
    opened = [grp for s in summ.slurpers for grp in s.groups if want.active or grp.needs_someone]
    ids = [i.metric_id for i in summ.attention[:MAX_LISTED] + summ.silenced[:MAX_LISTED]]
    budget = MAX_OPEN_ITEMS
    opened_keys = set()
    for grp in opened:
        if budget <= 0:
            break
        shown = grp.items if want.active else [i for i in grp.items if i.icon in PROBLEMS]
        ids += [i.metric_id for i in shown[: min(budget, MAX_GROUP_ITEMS)]]
        budget -= len(shown)
        opened_keys.add(grp.key)
    if not ids and summ.slurpers:  # one read, so a page shows that rrdcached is away (the banner)
        ids = [summ.slurpers[0].groups[0].items[0].metric_id]
    rows = {r.metric_id: r for r in monitor().rows(list(dict.fromkeys(ids)))}
    svgs, links = _svgs(), _links()
    parts = [
        ("counts", render_template("web/_overview_counts.html", ov=summ, icons=ICONS, svgs=svgs)),
        ("attention", _attention(summ.attention, rows, svgs, links)),
        ("silenced", _silenced(summ.silenced, rows, svgs, links)),
    ]
    for s in summ.slurpers:
        if not want.active and not any(g.needs_someone for g in s.groups):
            parts.append((f"s:{s.id}", slurper_block(s, None, svgs, links, ICONS)))
            continue
        groups = "".join(
            group_block(g, rows, svgs, links, ICONS) if g.key in opened_keys else _folded(g, svgs, links)
            for g in s.groups
        )
        parts.append((f"s:{s.id}", slurper_block(s, groups, svgs, links, ICONS)))
    digests = {pid: digest(html) for pid, html in parts}
    version = digest(repr(sorted(digests.items())) + repr(want))
    _remember(version, digests)
    return parts, summ, version


def _folded(group: Group, svgs: Mapping[str, str], links: Links) -> str:
    """A folded group's line, kept while its counts hold (at 100,000 metrics most lines repeat)."""
    key = (links.group_body, group.key, tuple(group.counts.items()))
    html = _FOLDED.get(key)
    if html is None:
        if len(_FOLDED) > MAX_FOLDED_CACHE:
            _FOLDED.clear()
        html = _FOLDED[key] = group_block(group, None, svgs, links, ICONS)
    return html


def _listing(
    items: Sequence[Item], rows: Mapping[str, MetricRow], svgs: Mapping[str, str], links: Links
) -> str:
    shown = [rows[i.metric_id] for i in items[:MAX_LISTED] if i.metric_id in rows]
    more = len(items) - len(shown)
    tail = f'<li class="more">and {more} more: use the filter</li>' if more > 0 else ""
    return f'<ul class="metrics">{metric_items(shown, links.graph_root, svgs)}{tail}</ul>'


def _attention(
    items: Sequence[Item], rows: Mapping[str, MetricRow], svgs: Mapping[str, str], links: Links
) -> str:
    """The metrics that need someone (critical, unknown, warning, stale; not silenced), worst first."""
    listing = (
        _listing(items, rows, svgs, links)
        if items
        else ('<p class="empty">Nothing that a rule judges needs attention.</p>')
    )
    return (
        '<section class="attention" aria-labelledby="h-attention"><h2 id="h-attention">Needs attention '
        f'<span class="n">{len(items)}</span></h2>{listing}</section>'
    )


def _silenced(
    items: Sequence[Item], rows: Mapping[str, MetricRow], svgs: Mapping[str, str], links: Links
) -> str:
    """Acknowledged and in-downtime problems, apart and folded."""
    if not items:
        return ""
    return (
        '<details class="silenced"><summary>Silenced: acknowledged or in downtime '
        f'<span class="n">{len(items)}</span></summary>{_listing(items, rows, svgs, links)}</details>'
    )


def _versions() -> OrderedDict[str, dict[str, str]]:
    store: OrderedDict[str, dict[str, str]] = current_app.extensions["rexmon"].setdefault(
        "overview_versions", OrderedDict()
    )
    return store


def _remember(version: str, digests: dict[str, str]) -> None:
    """Keep the parts' digests of the last few versions, so a refresh can send only what changed."""
    store = _versions()
    with _VERSIONS_LOCK:
        store[version] = digests
        store.move_to_end(version)
        while len(store) > KEEP_VERSIONS:
            store.popitem(last=False)


@bp.get("/login")
def login() -> Any:
    """Ask the browser for credentials, then go back to where the user was."""
    if g.user is None:
        abort(401)
    target = request.args.get("next", "")
    return redirect(target if _LOCAL_PATH.fullmatch(target) else url_for(".overview"))


@bp.get("/config")
def config_page() -> str:
    """Slurpers and notification targets, with every secret masked."""
    config = ext("config")
    targets = [
        (t.name or f"target {i + 1}", mask(t.url.get()), t.severities) for i, t in enumerate(config.notify)
    ]
    return render_template("web/config.html", config=config, targets=targets)

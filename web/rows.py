"""The overview's metric items and graph groups as HTML, built in Python: at 10,000 rows Jinja's
per-expression cost (escaping, attribute lookups) is most of the page's time. Every text is escaped
here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote, urlencode

from markupsafe import Markup

from web.context import fmt_time
from web.data import MetricRow
from web.overview import Group, SlurperSummary


def metric_title(m: MetricRow) -> str:
    """What hovering a metric says: its state, value (and raw counter), the time of the value and the
    acknowledgement's comment, if any."""
    state = f" ({m.state})" if m.state != "OK" and m.icon != m.state.lower() else ""
    raw = f" (counter {m.raw_display})" if m.raw is not None else ""
    ack = f"; acknowledged: {m.ack_comment}" if m.ack_comment else ""
    return f"{m.metric_id}: {m.label}{state}, {m.display}{raw} at {fmt_time(m.time)}{ack}"


def metric_items(rows: Sequence[MetricRow], graph_root: str, svgs: Mapping[str, str]) -> Markup:
    """One ``<li class="metric">`` per row, linking to the metric's graph page."""
    out = []
    for m in rows:
        mid, icon, group = escape(m.metric_id), escape(m.icon), escape(m.group)
        val_title = f' title="counter {escape(m.raw_display)}"' if m.raw is not None else ""
        out.append(
            f'<li class="metric state-{icon}" data-id="{mid}" data-state="{icon}" data-group="{group}">'
            f'<a href="{escape(graph_root)}{mid}" title="{escape(metric_title(m))}">{svgs[m.icon]}'
            f'<span class="name">{escape(m.name)}</span><span class="val"{val_title}>'
            f"{escape(m.display)}</span></a></li>"
        )
    return Markup("\n".join(out))


def chips(counts: Mapping[str, int], svgs: Mapping[str, str], order: Sequence[str]) -> str:
    """Per-state counts of a group or slurper, problems first (``<span class="chip">``)."""
    return "".join(
        f'<span class="chip chip-{kind}" title="{counts[kind]} {kind}">{svgs[kind]}{counts[kind]}</span>'
        for kind in order
        if counts.get(kind)
    )


@dataclass(frozen=True)
class Links:
    """URL prefixes the overview's HTML needs, computed once per request."""

    graph_root: str  # + "<slurper>/<metric>" -> a metric's page
    slurper_root: str  # + "<slurper>" -> a slurper's page
    group_body: str  # + quoted key -> a collapsed group's items
    slurper_body: str  # + quoted id -> a folded slurper's group lines
    image_root: str  # + "<slurper>.png?group=..." -> a group's thumbnail
    spark_root: str  # + "<slurper>.svg?group=..." -> a group's sparkline (web/spark.py)


def spark_img(slurper: str, graph: str, links: Links) -> str:
    """A group's sparkline, fetched by the browser only once it scrolls into view (``data-src``)."""
    src = links.spark_root + quote(slurper) + ".svg?" + urlencode({"group": graph})
    label = escape(f"last 24 hours of {slurper}/{graph or '(ungrouped)'}")
    return f'<img class="spark" data-src="{escape(src)}" alt="{label}" width="120" height="24">'


def group_block(
    group: Group,
    rows: Mapping[str, MetricRow] | None,
    svgs: Mapping[str, str],
    links: Links,
    order: Sequence[str],
) -> str:
    """A graph group: its summary line and, when ``rows`` is given, its open body of items."""
    key, graph = escape(group.key), escape(group.graph or "(ungrouped)")
    worst = group.worst
    head = (
        f'<summary><span class="worst">{svgs[worst]}</span><span class="gname">{graph}</span>'
        f'<span class="chips">{chips(group.counts, svgs, order)}</span>'
        f"{spark_img(group.slurper, group.graph, links)}</summary>"
    )
    src = escape(links.group_body + quote(group.key, safe=""))
    if rows is None:
        return (
            f'<li class="group" data-key="{key}" data-worst="{worst}"><details>{head}'
            f'<div class="group-body lazy" data-src="{src}"></div></details></li>'
        )
    body = group_body(group, [rows[i.metric_id] for i in group.items if i.metric_id in rows], svgs, links)
    return (
        f'<li class="group" data-key="{key}" data-worst="{worst}"><details open>{head}'
        f'<div class="group-body lazy" data-src="{src}" data-loaded="1">{body}</div></details></li>'
    )


def group_body(group: Group, rows: Sequence[MetricRow], svgs: Mapping[str, str], links: Links) -> str:
    """A group's items and a thumbnail of its graph (loaded by the browser only when shown).

    ``rows`` may be a part of the group (its problems); a link then loads all of it.
    """
    thumb = (
        links.image_root
        + quote(group.slurper)
        + ".png?"
        + urlencode({"group": group.graph, "size": "small", "period": "day"})
    )
    page = links.slurper_root + quote(group.slurper) + "?" + urlencode({"group": group.graph})
    more = ""
    if len(rows) < len(group.items):
        src = escape(links.group_body + quote(group.key, safe=""))
        more = (
            f'<a class="load-all" href="{escape(page)}" data-src="{src}">all {len(group.items)} metrics '
            f"of {escape(group.graph or group.slurper)}</a>"
        )
    return (
        f'<a class="thumb" href="{escape(page)}"><img loading="lazy" width="400" height="120" alt="graph of '
        f'{escape(group.key)}" src="{escape(thumb)}"></a>'
        f'<ul class="metrics">{metric_items(rows, links.graph_root, svgs)}</ul>{more}'
    )


def slurper_block(
    s: SlurperSummary, groups: str | None, svgs: Mapping[str, str], links: Links, order: Sequence[str]
) -> str:
    """A slurper's section: worst icon, link, counts, and its groups' lines.

    ``groups`` None: folded (nothing in it needs someone); its lines are fetched when it is opened.
    """
    sid = escape(s.id)
    head = (
        f'<span class="worst">{svgs[s.worst]}</span><a href="{escape(links.slurper_root + quote(s.id))}">'
        f'{sid}</a><span class="chips">{chips(s.counts, svgs, order)}</span>'
        f'<span class="n">{sum(s.counts.values())} metrics, {len(s.groups)} groups</span>'
    )
    if groups is None:
        if s.groups:  # its worst group (groups come worst first)
            head += spark_img(s.id, s.groups[0].graph, links)
        src = escape(links.slurper_body + quote(s.id, safe=""))
        return (
            f'<section class="slurper folded" data-slurper="{sid}"><details><summary><h2>{head}</h2>'
            f'</summary><ul class="groups lazy" data-src="{src}"></ul></details></section>'
        )
    body = f'<ul class="groups">{groups}</ul>'
    return f'<section class="slurper" data-slurper="{sid}"><h2>{head}</h2>{body}</section>'

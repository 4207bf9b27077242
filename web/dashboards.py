"""Dashboards and experiment pages from ``[[dashboard]]`` and ``[[experiment]]`` (rexmon/config_pages.py).

A dashboard is rows of graphs of the metrics whose ids match each row's globs; an experiment page
gathers the metrics of one experiment across systems (its HTCondor groups, Slurm accounts, FTS VOs,
storage groups, dCache VOs), with what needs someone first and the downtimes that touch them. Values
and states come from :class:`web.data.Monitor` as on the overview; nothing is judged here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, get_template_attribute, render_template, url_for
from markupsafe import Markup

from alarms.globs import GlobIndex
from downtime.index import DowntimeIndex
from downtime.windows import Window
from rexmon.config_pages import MAX_ROW_GRAPHS
from web.context import ext, monitor, now
from web.data import ICON_LABELS, ICONS, MetricRow
from web.overview import PROBLEMS, SILENCED
from web.rows import metric_items

bp = Blueprint("dashboards", __name__)
#: metrics an experiment page lists with values at most
MAX_EXPERIMENT_METRICS = 2000
#: how far ahead an experiment page looks for downtimes
DOWNTIME_AHEAD = 7 * 86400


@dataclass
class Graph:
    """One small graph: a metric's image, its page, and its row for the caption."""

    row: MetricRow
    image: str
    page: str


@bp.app_context_processor
def _pages() -> dict[str, Any]:
    """Every page can link the dashboards and experiments (the overview does)."""
    config = ext("config")
    return {"dashboards": config.dashboards, "experiments": config.experiments}


@bp.get("/dashboards/")
def index() -> str:
    return render_template("web/dashboards.html")


@bp.get("/dashboards/<name>")
def dashboard(name: str) -> str:
    dash = _find(ext("config").dashboards, name, "dashboard")
    ids = monitor().metric_ids()
    rows = []
    for r in dash.rows:
        matched = _matching(ids, r.match)
        shown = monitor().rows(matched[:MAX_ROW_GRAPHS])
        rows.append((r, _graphs(shown, r.period or dash.period), len(matched)))
    return render_template("web/dashboard.html", dash=dash, rows=rows, max_graphs=MAX_ROW_GRAPHS)


@bp.get("/experiments/<name>")
def experiment(name: str) -> str:
    """An experiment's metrics from every system, what needs someone first, and its downtimes."""
    config = ext("config")
    exp = _find(config.experiments, name, "experiment")
    matched = _matching(monitor().metric_ids(), exp.patterns((s.id, s.type) for s in config.slurpers))
    rows = monitor().rows(matched[:MAX_EXPERIMENT_METRICS])
    svgs = _svgs()
    root = url_for("graphs.metric_page", slurper="s", metric="m")[: -len("s/m")]
    problems = sorted((r for r in rows if r.icon in PROBLEMS), key=lambda r: (r.rank, r.metric_id))
    silenced = [r for r in rows if r.icon in SILENCED]
    return render_template(
        "web/experiment.html",
        exp=exp,
        matched=len(matched),
        problems=metric_items(problems, root, svgs),
        n_problems=len(problems),
        silenced=metric_items(silenced, root, svgs),
        n_silenced=len(silenced),
        systems=_systems(rows, root, svgs, exp.period),
        downtimes=_downtimes(matched),
    )


def _systems(
    rows: Sequence[MetricRow], root: str, svgs: dict[str, str], period: str
) -> list[tuple[str, Markup, list[Graph]]]:
    """Per slurper: its items with values and graphs of its first metrics."""
    by_slurper: dict[str, list[MetricRow]] = {}
    for r in rows:
        by_slurper.setdefault(r.slurper, []).append(r)
    return [(sid, metric_items(rs, root, svgs), _graphs(rs[:12], period)) for sid, rs in by_slurper.items()]


def _find(pages: Sequence[Any], name: str, kind: str) -> Any:
    for page in pages:
        if page.name == name:
            return page
    abort(404, f"no {kind} named {name!r} in the configuration")


def _matching(ids: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """The ids any pattern matches (the glob matcher of rules and downtimes)."""
    if not patterns:
        return []
    index: GlobIndex[bool] = GlobIndex([(list(patterns), True)])
    return [m for m in ids if index.matches(m)]


def _graphs(rows: Sequence[MetricRow], period: str) -> list[Graph]:
    return [
        Graph(
            r,
            url_for(
                "graphs.metric_image",
                slurper=r.slurper,
                metric=r.name,
                fmt="png",
                period=period,
                size="small",
            ),
            url_for("graphs.metric_page", slurper=r.slurper, metric=r.name, period=period),
        )
        for r in rows
    ]


def _downtimes(ids: Sequence[str]) -> list[Window]:
    """Downtimes in force or starting within a week that cover any of ``ids``."""
    t = now()
    windows = monitor().windows(t, t + DOWNTIME_AHEAD)
    index = DowntimeIndex(windows)
    seen: dict[tuple[int, float], Window] = {}
    for mid in ids:
        for w in index.overlapping(mid, t, t + DOWNTIME_AHEAD):
            seen.setdefault((w.downtime_id, w.start), w)
        if len(seen) == len(windows):
            break
    return sorted(seen.values(), key=lambda w: w.start)


def _svgs() -> dict[str, str]:
    icon = get_template_attribute("web/_icons.html", "icon")
    return {kind: str(icon(kind, ICON_LABELS[kind])) for kind in ICONS}

"""HTML pages: the overview, sign-in and the configuration page (graph pages are in web/graphs.py)."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import (
    Blueprint,
    abort,
    g,
    get_template_attribute,
    redirect,
    render_template,
    request,
    url_for,
)

from web.context import ext, monitor
from web.data import ICON_LABELS, ICONS
from web.rows import metric_items

log = logging.getLogger(__name__)
bp = Blueprint("views", __name__)
MAX_LINES = 12
SIZES = {"small": (400, 120), "medium": (700, 220), "large": (1100, 360)}
#: a path on this site: browsers read /\host as //host, and drop tabs and new lines
_LOCAL_PATH = re.compile(r"/(?![/\\])[^\x00-\x1f\x7f]*")


@bp.get("/")
def overview() -> str:
    data = monitor().overview()
    template = "web/_overview_body.html" if request.args.get("partial") else "web/overview.html"
    # 10,000 rows: render each icon and the link prefix once, not once per row
    icon = get_template_attribute("web/_icons.html", "icon")
    svgs = {kind: icon(kind, ICON_LABELS[kind]) for kind in ICONS}
    graph_root = url_for("graphs.metric_page", slurper="s", metric="m")[: -len("s/m")]
    return render_template(
        template,
        ov=data,
        icons=ICONS,
        svgs=svgs,
        graph_root=graph_root,
        items=metric_items,
        query=request.args.get("q", ""),
    )


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
        (t.name or f"target {i + 1}", mask_url(t.url.get()), t.severities)
        for i, t in enumerate(config.notify)
    ]
    return render_template("web/config.html", config=config, targets=targets)


def mask_url(url: str) -> str:
    """An apprise URL as apprise shows it with privacy on; unknown schemes keep only the scheme."""
    try:
        import apprise

        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin:
            return str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
    except Exception as exc:  # masking must never fail open
        log.debug("cannot mask a notify URL: %s", exc)
    return url.split("://", 1)[0] + "://****" if "://" in url else "****"

"""Screenshots of the demo site in headless Chromium: ``python -m rexmon.demo.screenshots [OUT_DIR]``.

The README's pictures (docs/screenshots/) and the demo's browser test both come from :func:`capture`.
Playwright drives the system's Chromium; it never downloads a browser.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rexmon.demo.democonfig import BREACHING

log = logging.getLogger(__name__)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GRAPH_PATH = "/graph/" + BREACHING + "?period=week"
#: a Munin slurper whose graphs have units with IEC prefixes (memory in bytes, --base 1024)
GROUP_PATH = "/graph/memory?period=day"
VIEWPORT = {"width": 1280, "height": 900}
#: a phone held upright
PHONE = {"width": 400, "height": 860}


@dataclass(frozen=True)
class Shots:
    """What :func:`capture` saw: the files and the facts the test checks."""

    overview: Path
    graph: Path
    breaching_icon: str
    image_width: int
    #: the slurper page of GROUP_PATH and the metric page at 400 px
    group: Path | None = None
    phone: Path | None = None
    #: the interactive graph's y-axis labels as drawn, and whether the 400 px page scrolls sideways
    y_ticks: tuple[str, ...] = ()
    phone_scrolls: bool = False


@contextmanager
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def breaching_selector(metric_id: str = BREACHING) -> str:
    """The state icon of one metric on the overview."""
    return f'li.metric[data-id="{metric_id}"] svg.icon'


_IMAGES_LOADED = (
    "() => [...document.querySelectorAll('img.graph')].every(i => i.complete && i.naturalWidth > 0)"
)
#: the images the screenshot shows (lazy ones load only once in view) have loaded
_VISIBLE_IMAGES_LOADED = (
    "() => [...document.querySelectorAll('img')]"
    ".filter(i => i.getBoundingClientRect().top < innerHeight)"
    ".every(i => i.complete && (!i.dataset.src || i.getAttribute('src')))"  # sparklines: asked for
)
_CHART_DRAWN = "() => { const c = document.getElementById('chart'); return c && c.dataset.yTicks; }"


def capture(chromium: Any, url: str, out_dir: Path, timeout_ms: float = 120_000) -> Shots:
    """Overview (waiting for the breaching metric's alert icon), the week graph of that metric, a
    slurper's graph groups with units, and the metric page on a 400 px phone."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = url.rstrip("/")
    page = chromium.new_page(viewport=VIEWPORT)
    try:
        icon = _wait_for_alarm(page, base + "/", timeout_ms)
        page.wait_for_function(_VISIBLE_IMAGES_LOADED, timeout=timeout_ms)
        overview = out_dir / "overview.png"
        page.screenshot(path=str(overview))
        page.goto(base + GRAPH_PATH)
        page.wait_for_function(_IMAGES_LOADED, timeout=timeout_ms)
        page.wait_for_function(_CHART_DRAWN, timeout=timeout_ms)
        width = int(page.locator("img.graph").first.evaluate("img => img.naturalWidth"))
        ticks = tuple(json.loads(page.locator("#chart").get_attribute("data-y-ticks") or "[]"))
        graph = out_dir / "graph.png"
        page.screenshot(path=str(graph), full_page=True)
        page.goto(base + GROUP_PATH)
        page.locator("img.graph").evaluate_all("imgs => imgs.forEach(i => { i.loading = 'eager'; })")
        page.wait_for_function(_IMAGES_LOADED, timeout=timeout_ms)
        group = out_dir / "group.png"
        page.screenshot(path=str(group))
    finally:
        page.close()
    phone, scrolls = _phone(chromium, base, out_dir, timeout_ms)
    return Shots(overview, graph, icon, width, group, phone, ticks, scrolls)


def _phone(chromium: Any, base: str, out_dir: Path, timeout_ms: float) -> tuple[Path, bool]:
    """The metric page at 400 px; True when it is wider than the screen (it must not be)."""
    page = chromium.new_page(viewport=PHONE)
    try:
        page.goto(base + GRAPH_PATH)
        page.wait_for_function(_CHART_DRAWN, timeout=timeout_ms)
        page.wait_for_function(_IMAGES_LOADED, timeout=timeout_ms)
        scrolls = bool(
            page.evaluate("() => document.documentElement.scrollWidth > document.documentElement.clientWidth")
        )
        phone = out_dir / "phone.png"
        page.screenshot(path=str(phone))
    finally:
        page.close()
    return phone, scrolls


def _wait_for_alarm(page: Any, url: str, timeout_ms: float) -> str:
    """Load the overview until the breaching metric's icon is not OK (the first evaluation may be
    still to come); return its label."""
    deadline = time.monotonic() + timeout_ms / 1000
    label = ""
    while True:
        page.goto(url)
        icon = page.locator(breaching_selector()).first
        if icon.count():
            label = icon.get_attribute("aria-label") or ""
            if label != "OK":
                return label
        if time.monotonic() > deadline:
            return label
        page.wait_for_timeout(2000)


def main(argv: list[str] | None = None) -> int:
    """Start a demo in a temporary directory, capture the pictures into OUT_DIR, stop the demo."""
    from rexmon.demo.run import Demo, DemoOptions

    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0] if args else "docs/screenshots")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="rexmon-demo-") as tmp:
        Path(tmp).chmod(0o755)  # the demo's PostgreSQL runs as its own user and keeps its data in here
        demo = Demo(DemoOptions(Path(tmp), "127.0.0.1:0"))
        with demo, browser() as chromium:
            shots = capture(chromium, demo.url, out_dir)
    log.info("wrote %s and %s (breaching metric shows %s)", shots.overview, shots.graph, shots.breaching_icon)
    return 0


if __name__ == "__main__":
    sys.exit(main())

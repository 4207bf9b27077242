"""The overview's sparklines: a graph group's last day as a tiny SVG, drawn from a coarse archive fetch.

A sparkline is a shape, not a reading: no axes, no legend. Its series share one vertical scale (the
group's first unit, like the group's graph), so a series that is flat next to a large one stays flat.
The page asks for one only when its row scrolls into view (web/static/overview.js).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape

from alarms.catalogue import MetricMeta
from rrd.spec import Series

#: size of the drawing (CSS pixels); the page shows it at this size or smaller
WIDTH, HEIGHT = 120, 24
#: series drawn at most (more lines in 120 px are a smear)
MAX_SERIES = 4
#: what one sparkline covers, and the step it asks the archive for (48 points)
PERIOD, RESOLUTION = 86_400, 1_800
#: points drawn per series at most: an archive without a 30-minute archive answers finer, averaged here
POINTS = 48
COLOURS = ("#1f5fa8", "#b3541e", "#2e7d32", "#6a1b9a")


def spark_ids(ids: Sequence[str], meta: Mapping[str, MetricMeta]) -> list[str]:
    """The series a group's sparkline draws: its first unit's metrics by name, at most MAX_SERIES."""
    ordered = sorted(ids)
    if not ordered:
        return []
    unit = _unit(ordered[0], meta)
    return [m for m in ordered if _unit(m, meta) == unit][:MAX_SERIES]


def _unit(mid: str, meta: Mapping[str, MetricMeta]) -> str:
    found = meta.get(mid)
    return found.unit if found is not None else ""


def window(now: float, step: int) -> tuple[int, int]:
    """The day before ``now``, its end rounded down to ``step`` so answers repeat within a step."""
    end = int(now) - int(now) % max(step, 1)
    return end - PERIOD, end


def fetch_all(
    fetch: Callable[[str, int, int, str, int | None], Series], ids: Sequence[str], start: int, end: int
) -> list[Series]:
    """Each id's averages at the coarse step (``fetch`` is the archive's)."""
    return [fetch(m, start, end, "AVERAGE", RESOLUTION) for m in ids]


def svg(series: Sequence[Series], label: str) -> str:
    """The sparkline of ``series`` on one scale; gaps (unknown values) break the line."""
    finite = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    paths = []
    if finite:
        low, high = min(finite), max(finite)
        span = high - low
        for colour, s in zip(COLOURS, series, strict=False):
            d = _path(s.values, low, span)
            if d:
                paths.append(
                    f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="1.5" '
                    'stroke-linejoin="round" stroke-linecap="round"/>'
                )
    else:  # nothing archived in the day: a dashed midline says "no data", not "zero"
        paths.append(
            f'<line x1="0" y1="{HEIGHT / 2}" x2="{WIDTH}" y2="{HEIGHT / 2}" stroke="#767676" '
            'stroke-dasharray="3 3"/>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{''.join(paths)}</svg>"
    )


def coarse(values: Sequence[float | None], points: int = POINTS) -> list[float | None]:
    """``values`` averaged in consecutive runs down to at most ``points`` (a run with none known: None)."""
    if len(values) <= points:
        return list(values)
    n = len(values)
    out: list[float | None] = []
    for j in range(points):
        known = [
            v for v in values[j * n // points : (j + 1) * n // points] if v is not None and math.isfinite(v)
        ]
        out.append(sum(known) / len(known) if known else None)
    return out


def _path(values: Sequence[float | None], low: float, span: float) -> str:
    """An SVG path through ``values`` scaled into the drawing (1 px margin), "M" after every gap."""
    values = coarse(values)
    n = len(values)
    if n == 0:
        return ""
    dx = WIDTH / max(n - 1, 1)
    out: list[str] = []
    pen_up = True
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            pen_up = True
            continue
        y = (HEIGHT - 1) - ((v - low) / span * (HEIGHT - 2) if span > 0 else (HEIGHT - 2) / 2)
        out.append(f"{'M' if pen_up else 'L'}{i * dx:.1f} {y:.1f}")
        pen_up = False
    return "".join(out)

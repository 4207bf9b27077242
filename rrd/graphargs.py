"""What ``rrdtool graph`` is told: the validated graph spec and its argument list.

Every argument handed to rrdtool is built here from validated ids and numbers; free text (legends,
titles, downtime reasons) goes through :func:`escape_text`, because rrdtool treats ``:`` as a field
separator and a trailing ``\\x`` as a formatting directive. Drawing and caching are in :mod:`rrd.graph`.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rrd.archive import DS_NAME
from rrd.names import check_id

Format = Literal["PNG", "SVG"]
CONTENT_TYPES = {"PNG": "image/png", "SVG": "image/svg+xml"}
PALETTE = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
BAND_COLORS = {"outage": "#7f7f7f", "at-risk": "#ff9900"}
THRESHOLD_COLORS = {"warning": "#e0a000", "critical": "#d00000"}
MIN_SIZE, MAX_SIZE = (100, 50), (4000, 2000)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")


class GraphError(Exception):
    """A graph could not be drawn; the message names the metric or the bad argument."""


@dataclass(frozen=True)
class Band:
    """A shaded interval (a downtime) with the text of its legend entry."""

    start: float
    end: float
    label: str
    severity: str = "outage"


@dataclass(frozen=True)
class Rule:
    """A horizontal threshold line at ``value`` (warning or critical)."""

    value: float
    label: str
    level: Literal["warning", "critical"] = "warning"


@dataclass(frozen=True)
class GraphSpec:
    """What to draw: one line per metric id between ``start`` and ``end`` (epoch seconds)."""

    metric_ids: tuple[str, ...]
    start: int
    end: int
    width: int = 600
    height: int = 200
    fmt: Format = "PNG"
    title: str = ""
    labels: tuple[str, ...] = ()
    bands: tuple[Band, ...] = ()
    rules: tuple[Rule, ...] = ()
    full_size: bool = False
    #: the IANA zone of the time axis (part of the cache key: the same URL in two zones is two images)
    zone: str = "UTC"
    #: the values' unit (the y axis label, the legend's numbers) and the base of its prefixes
    unit: str = ""
    base: int = 1000
    #: each value (and threshold) is multiplied by this before drawing: a unit that carries its own
    #: prefix (HTCondor's ``MiB``) is drawn in its base unit (``B``, scale 1024**2), so rrdtool's prefix is
    #: the only one (``500 GiB``, never ``512 kMiB``)
    scale: float = 1.0
    #: per metric, an rrdtool RPN drawn instead of its value ("" for the value itself), over the DEF
    #: names ``v0``, ``v1``... of this graph's metrics (Munin's cdef, translated by the caller)
    cdefs: tuple[str, ...] = ()
    #: per metric, True to draw it mirrored below the axis (the other half of Munin's ``negative``)
    negated: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        if not self.metric_ids:
            raise GraphError("a graph needs at least one metric")
        for mid in self.metric_ids:
            check_id(mid)
        if not (isinstance(self.start, int) and isinstance(self.end, int)) or self.start >= self.end:
            raise GraphError(f"start {self.start!r} must be an integer before end {self.end!r}")
        if not (MIN_SIZE[0] <= self.width <= MAX_SIZE[0] and MIN_SIZE[1] <= self.height <= MAX_SIZE[1]):
            raise GraphError(f"size {self.width}x{self.height} is outside {MIN_SIZE} .. {MAX_SIZE}")
        if self.fmt not in CONTENT_TYPES:
            raise GraphError(f"format {self.fmt!r} is not one of {', '.join(CONTENT_TYPES)}")
        check_zone(self.zone)
        if self.base not in (1000, 1024):
            raise GraphError(f"base {self.base!r} must be 1000 (SI prefixes) or 1024 (IEC prefixes)")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise GraphError(f"scale {self.scale!r} must be a positive finite number")
        for expr in self.cdefs:
            if expr:
                check_cdef(expr, len(self.metric_ids))


_RPN_OPS = frozenset(("+", "-", "*", "/", "UN", "ADDNAN", "IF", "MIN", "MAX"))
_RPN_NUMBER = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")


def check_cdef(expr: str, lines: int) -> str:
    """``expr`` when every token is a number, an operator rrdtool and web.rpn share, or ``v<i>`` of a
    metric of the graph: nothing else reaches rrdtool's argument list."""
    for tok in expr.split(","):
        ok = tok in _RPN_OPS or bool(_RPN_NUMBER.match(tok))
        if not ok and re.fullmatch(r"v[0-9]{1,3}", tok):
            ok = int(tok[1:]) < lines
        if not ok:
            raise GraphError(
                f"cdef {expr[:60]!r}: token {tok[:30]!r} is not a number, operator or v0..v{lines - 1}"
            )
    return expr


def check_zone(name: str) -> str:
    """``name`` when it is an IANA time zone (never a path: glibc would read any file as ``TZ``)."""
    ok = len(name) <= 64 and bool(_ZONE.match(name))
    if ok:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            ok = False
    if not ok:
        raise GraphError(f"{name[:64]!r} is not a time zone (use an IANA name like Europe/Zurich)")
    return name


def escape_text(text: str, limit: int = 120) -> str:
    """Make free text safe as an rrdtool legend: no control chars, backslashes or bare colons."""
    clean = _CONTROL.sub(" ", str(text)).replace("\\", "/")[:limit]
    return clean.replace(":", "\\:")


def _num(value: float) -> str:
    if not math.isfinite(value):
        raise GraphError(f"{value!r} is not a finite number")
    return repr(float(value))


def path_arg(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace(":", "\\:")


IEC_PREFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")


def iec_exponent(peak: float) -> int:
    """The power of 1024 to show ``peak`` in: 7.3e7 -> 2 (MiB)."""
    exp = 0
    while abs(peak) >= 1024 ** (exp + 1) and exp < len(IEC_PREFIXES) - 1:
        exp += 1
    return exp


def build_args(spec: GraphSpec, paths: Sequence[Path], iec: int | None = None) -> list[str]:
    """The rrdtool graph argument list (without the output file name).

    ``iec``: draw in that power of 1024 of ``spec.unit`` (2: MiB), since rrdtool's own prefixes are k, M,
    G in either base; the values are divided, the axis and legend say ``MiB``.
    """
    factor = spec.scale / (1024.0**iec if iec is not None else 1.0)
    args = [
        "--start",
        str(spec.start),
        "--end",
        str(spec.end),
        "--width",
        str(spec.width),
        "--height",
        str(spec.height),
        "--imgformat",
        spec.fmt,
        "--slope-mode",
        "--disable-rrdtool-tag",
        "--color",
        "BACK#ffffff",
        "--color",
        "SHADEA#ffffff",
        "--color",
        "SHADEB#ffffff",
        "--base",
        str(spec.base),
        "--watermark",
        f"times in {spec.zone}",
    ]
    unit = spec.unit
    if iec is not None:
        unit = IEC_PREFIXES[iec] + spec.unit
        args += ["--units-exponent", "0"]
    if unit:
        # rrdtool writes its prefixes as k, M, G whatever the base: say when they are powers of 1024
        label = unit if spec.base == 1000 or iec is not None else f"{unit} (k = 1024)"
        args += ["--vertical-label", escape_text(label, 40).replace("\\:", ":")]
    if spec.full_size:
        args.append("--full-size-mode")
    if spec.rules:  # autoscaling ignores HRULEs: widen the y axis so every threshold line shows
        values = [_num(r.value * factor) for r in sorted(spec.rules, key=lambda r: r.value)]
        args += ["--lower-limit", values[0], "--upper-limit", values[-1]]
    if spec.title:
        args += ["--title", escape_text(spec.title).replace("\\:", ":")]
    for i, path in enumerate(paths):
        args.append(f"DEF:v{i}={path_arg(path)}:{DS_NAME}:AVERAGE")
    args += _band_args(spec.bands)
    for i, mid in enumerate(spec.metric_ids):
        label = spec.labels[i] if i < len(spec.labels) else mid
        var = f"v{i}"
        if i < len(spec.cdefs) and spec.cdefs[i]:
            args.append(f"CDEF:c{i}={spec.cdefs[i]}")
            var = f"c{i}"
        if factor != 1.0:
            args.append(f"CDEF:s{i}={var},{_num(factor)},*")
            var = f"s{i}"
        drawn = var
        if i < len(spec.negated) and spec.negated[i]:  # drawn below the axis, its legend numbers as they are
            args.append(f"CDEF:n{i}={var},-1,*")
            drawn = f"n{i}"
        args += _line_args(
            i,
            label,
            PALETTE[i % len(PALETTE)],
            _gprint_unit(unit),
            var=var,
            fixed=iec is not None,
            drawn=drawn,
        )
    for rule in spec.rules:
        color = THRESHOLD_COLORS[rule.level]
        args.append(f"HRULE:{_num(rule.value * factor)}{color}:{escape_text(rule.label)}\\l")
    return args


def _band_args(bands: Sequence[Band]) -> list[str]:
    out: list[str] = []
    for j, band in enumerate(bands):
        color = BAND_COLORS.get(band.severity, BAND_COLORS["outage"])
        # TIME is the time of each data point: the band covers start <= TIME < end, drawn to the top
        out.append(
            f"CDEF:dt{j}=v0,POP,TIME,{int(band.start)},GE,TIME,{int(math.ceil(band.end))},LT,*,INF,UNKN,IF"
        )
        out.append(f"AREA:dt{j}{color}40:{escape_text(band.label)}\\l")
    return out


def _gprint_unit(unit: str) -> str:
    """The unit as GPRINT text: ``%`` doubled (a format directive), ``B/s`` after the prefix (``MB/s``)."""
    return escape_text(unit, 20).replace("%", "%%")


def _line_args(
    i: int,
    label: str,
    color: str,
    unit: str = "",
    var: str | None = None,
    fixed: bool = False,
    drawn: str | None = None,
) -> list[str]:
    """A series' line (of ``drawn``, default ``var``) and the min/avg/max/last of ``var``; ``fixed``: the
    unit already holds its prefix."""
    v = var or f"v{i}"
    out = [f"LINE2:{drawn or v}{color}:{escape_text(label, 60)}\\l"]
    for cf, name in (("MINIMUM", "min"), ("AVERAGE", "avg"), ("MAXIMUM", "max"), ("LAST", "last")):
        out.append(f"VDEF:{v}{name}={v},{cf}")
        if fixed:
            out.append(f"GPRINT:{v}{name}:{name} %8.2lf {unit}")
        elif unit:
            out.append(f"GPRINT:{v}{name}:{name} %8.2lf %s{unit}")
        else:
            out.append(f"GPRINT:{v}{name}:{name} %8.2lf%s")
    out[-1] += "\\l"
    return out

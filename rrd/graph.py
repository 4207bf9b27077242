"""Server-side graphs with ``rrdtool graph``: lines, downtime bands, threshold rules, a cached image.

Every argument handed to rrdtool is built here from validated ids and numbers; free text (legends,
titles, downtime reasons) goes through :func:`escape_text`, because rrdtool treats ``:`` as a field
separator and a trailing ``\\x`` as a formatting directive.
"""

from __future__ import annotations

import hashlib
import logging
import math
import multiprocessing
import os
import re
import tempfile
import threading
import time
import zoneinfo
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import rrdtool

from rrd.archive import DS_NAME, Archive, ArchiveError
from rrd.names import check_id
from rrd.spec import MetricNotFound

log = logging.getLogger(__name__)

Format = Literal["PNG", "SVG"]
CONTENT_TYPES = {"PNG": "image/png", "SVG": "image/svg+xml"}
PALETTE = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
BAND_COLORS = {"outage": "#7f7f7f", "at-risk": "#ff9900"}
THRESHOLD_COLORS = {"warning": "#e0a000", "critical": "#d00000"}
MIN_SIZE, MAX_SIZE = (100, 50), (4000, 2000)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CACHE_MAX_AGE = 86400
_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")
#: librrd's graph code is not thread-safe (its Pango font map and fontconfig are process-wide): two
#: ``graphv`` calls at once in one process crash it (SIGSEGV, or an fcmatch.c assertion), and it takes
#: the time zone of its axis from the process-wide ``TZ``. So graphs are drawn in single-threaded child
#: processes (:class:`Drawer`), each setting ``TZ`` for the graph it draws; a crash there is one failed
#: image, not a dead web server. fetch, info and last stay in the server process.
_GRAPH_LOCK = threading.Lock()


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


@dataclass
class Rendered:
    """An image with its geometry (``graph_left``, ``graph_width``, ``graph_start``... from graphv)."""

    data: bytes
    content_type: str
    info: dict[str, float | str] = field(default_factory=dict)
    cached: bool = False


def escape_text(text: str, limit: int = 120) -> str:
    """Make free text safe as an rrdtool legend: no control chars, backslashes or bare colons."""
    clean = _CONTROL.sub(" ", str(text)).replace("\\", "/")[:limit]
    return clean.replace(":", "\\:")


def _num(value: float) -> str:
    if not math.isfinite(value):
        raise GraphError(f"{value!r} is not a finite number")
    return repr(float(value))


def _path_arg(path: Path) -> str:
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
    divisor = 1024.0**iec if iec is not None else 1.0
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
        values = [_num(r.value / divisor) for r in sorted(spec.rules, key=lambda r: r.value)]
        args += ["--lower-limit", values[0], "--upper-limit", values[-1]]
    if spec.title:
        args += ["--title", escape_text(spec.title).replace("\\:", ":")]
    for i, path in enumerate(paths):
        args.append(f"DEF:v{i}={_path_arg(path)}:{DS_NAME}:AVERAGE")
    args += _band_args(spec.bands)
    for i, mid in enumerate(spec.metric_ids):
        label = spec.labels[i] if i < len(spec.labels) else mid
        var = f"v{i}"
        if i < len(spec.cdefs) and spec.cdefs[i]:
            args.append(f"CDEF:c{i}={spec.cdefs[i]}")
            var = f"c{i}"
        if iec is not None:
            args.append(f"CDEF:s{i}={var},{_num(divisor)},/")
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
        args.append(f"HRULE:{_num(rule.value / divisor)}{color}:{escape_text(rule.label)}\\l")
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


class GraphRenderer:
    """Draws graphs from an :class:`Archive`, caching images on disk under ``cache_dir``."""

    def __init__(
        self, archive: Archive, cache_dir: Path | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.archive = archive
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.clock = clock
        self._writes = 0

    def render(self, spec: GraphSpec, *, use_cache: bool = True) -> Rendered:
        """Draw ``spec``; a cached image is reused while no metric has new data. MetricNotFound (an
        ArchiveError) for an id the archive does not hold, GraphError for anything else."""
        paths, stamps = self._locate(spec.metric_ids)
        cache = self._cache_path(spec, stamps) if use_cache else None
        if cache is not None and cache.is_file():
            return Rendered(cache.read_bytes(), CONTENT_TYPES[spec.fmt], cached=True)
        # through rrdcached (FETCH) when it answers: librrd's read lock would make its writes fail
        args = [*self.archive.daemon_args(), *build_args(spec, paths, self._iec(spec, paths))]
        try:
            data, info = DRAWER.draw(spec.zone, args)
        except GraphError as exc:
            raise GraphError(f"rrdtool graph failed for {', '.join(spec.metric_ids)}: {exc}") from exc
        if cache is not None:
            self._store(cache, data)
        return Rendered(data, CONTENT_TYPES[spec.fmt], info)

    def _iec(self, spec: GraphSpec, paths: Sequence[Path]) -> int | None:
        """For a unit with IEC prefixes: the power of 1024 of the largest value drawn in range (None: SI)."""
        if spec.base != 1024 or not spec.unit:
            return None
        has_cdef = [i < len(spec.cdefs) and bool(spec.cdefs[i]) for i in range(len(spec.metric_ids))]
        peak = self._cdef_peak(spec, paths) if any(has_cdef) else 0.0
        for mid, transformed in zip(spec.metric_ids, has_cdef, strict=True):
            if transformed:
                continue
            try:
                series = self.archive.fetch(mid, spec.start, spec.end)
            except ArchiveError as exc:
                raise GraphError(str(exc)) from exc
            peak = max([peak, *(abs(v) for v in series.values if v is not None)])
        return iec_exponent(peak)

    def _cdef_peak(self, spec: GraphSpec, paths: Sequence[Path]) -> float:
        """The largest magnitude of the lines with a cdef, computed by rrdtool (``xport``: no image)."""
        args = [*self.archive.daemon_args(), "--start", str(spec.start), "--end", str(spec.end)]
        for i, path in enumerate(paths):
            args.append(f"DEF:v{i}={_path_arg(path)}:{DS_NAME}:AVERAGE")
        for i, expr in enumerate(spec.cdefs):
            if expr:
                args += [f"CDEF:c{i}={expr}", f"XPORT:c{i}"]
        try:
            out = rrdtool.xport(*args)
        except rrdtool.OperationalError as exc:
            raise GraphError(f"rrdtool xport failed for {', '.join(spec.metric_ids)}: {exc}") from None
        values = (abs(v) for row in out["data"] for v in row if v is not None and math.isfinite(v))
        return max(values, default=0.0)

    def _locate(self, metric_ids: Sequence[str]) -> tuple[list[Path], list[int]]:
        paths, stamps = [], []
        for mid in metric_ids:
            try:
                last = self.archive.last(mid)  # flushes rrdcached, so the graph sees every value
            except MetricNotFound:
                raise
            except ArchiveError as exc:
                raise GraphError(str(exc)) from exc
            if last is None:
                raise MetricNotFound(f"no such metric: {mid}")
            paths.append(self.archive.graph_source(mid))
            stamps.append(last[0])
        return paths, stamps

    def _cache_path(self, spec: GraphSpec, stamps: Sequence[int]) -> Path | None:
        if self.cache_dir is None:
            return None
        key = repr((spec, tuple(stamps))).encode()
        name = hashlib.sha256(key).hexdigest()[:40] + "." + spec.fmt.lower()
        return self.cache_dir / name[:2] / name

    def _store(self, path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError as exc:  # a full or read-only cache must not break the page
            log.warning("cannot cache graph %s: %s", path, exc)
            return
        self._writes += 1
        if self._writes % 500 == 0:
            self.prune(self.clock() - _CACHE_MAX_AGE)

    def prune(self, older_than: float) -> int:
        """Delete cached images last written before ``older_than`` (epoch seconds)."""
        if self.cache_dir is None or not self.cache_dir.is_dir():
            return 0
        removed = 0
        for f in self.cache_dir.glob("*/*.*"):
            try:
                if f.stat().st_mtime < older_than:
                    f.unlink()
                    removed += 1
            except OSError:
                continue
        return removed


def _draw_in_child(zone: str, args: Sequence[str]) -> tuple[bytes, dict[str, float | str]]:
    """In a drawing process (one thread): set the axis zone, draw, return the image and graphv's info."""
    if os.environ.get("TZ") != zone:
        os.environ["TZ"] = zone
        time.tzset()
    try:
        result = rrdtool.graphv("-", *args)
    except rrdtool.OperationalError as exc:
        raise GraphError(str(exc)) from None
    data = bytes(result.pop("image"))
    return data, {k: (v if isinstance(v, str) else float(v)) for k, v in result.items()}


class Drawer:
    """A pool of single-threaded child processes that run ``rrdtool.graphv``, started on first use.

    A child that dies (librrd crashed) breaks the pool: that graph fails with a GraphError and the next
    one starts a new pool.
    """

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def draw(self, zone: str, args: Sequence[str]) -> tuple[bytes, dict[str, float | str]]:
        pool = self._get()
        try:
            return pool.submit(_draw_in_child, check_zone(zone), list(args)).result()
        except BrokenProcessPool:
            with _GRAPH_LOCK:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False)
            raise GraphError("the drawing process died (librrd crashed); try again") from None

    def _get(self) -> ProcessPoolExecutor:
        with _GRAPH_LOCK:
            if self._pool is None:
                # spawn, not fork: a forked copy of the threaded web server could inherit a held lock
                ctx = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx)
            return self._pool

    def close(self) -> None:
        """Stop the drawing processes (a later draw starts new ones)."""
        with _GRAPH_LOCK:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


#: the process's drawing pool
DRAWER = Drawer(min(2, os.cpu_count() or 1))

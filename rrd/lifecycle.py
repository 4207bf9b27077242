"""An RRD file's layout against the configuration: retuning, checking, migrating and pruning files.

A file's step, DS type, heartbeat, bounds and RRAs are fixed when it is created. The writer retunes the
heartbeat and bounds of an existing file on its first write (``rrdtool tune``), so a lengthened interval
keeps storing known values; ``rexmon archive check`` lists what else differs, ``migrate`` rewrites files
to the configuration keeping their data (``rrdtool create --source``), ``prune`` removes files no metric
has written for a long time.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import rrdtool

from rrd.retention import Retention
from rrd.spec import DS_NAME, ArchiveError, SeriesSpec, ds_arg, rra_args

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layout:
    """What ``rrdtool info`` says about a file's shape (``None`` bounds are unknown/U)."""

    step: int
    ds_type: str
    heartbeat: int
    min: float | None
    max: float | None
    #: (CF, steps per row, rows) of each RRA, in file order
    rras: tuple[tuple[str, int, int], ...]
    last_update: int = 0


def _bound(value: object) -> float | None:
    if value is None or value == "U":
        return None
    try:
        num = float(str(value))
    except ValueError:
        return None
    return None if math.isnan(num) else num


def layout_of(info: Mapping[str, object]) -> Layout:
    """The layout of a file from its ``rrdtool info`` (local or rrdcached's INFO)."""
    rras = []
    i = 0
    while f"rra[{i}].cf" in info:
        rras.append(
            (str(info[f"rra[{i}].cf"]), _int(info[f"rra[{i}].pdp_per_row"]), _int(info[f"rra[{i}].rows"]))
        )
        i += 1
    return Layout(
        step=_int(info.get("step", 0)),
        ds_type=str(info.get(f"ds[{DS_NAME}].type", "")),
        heartbeat=_int(info.get(f"ds[{DS_NAME}].minimal_heartbeat", 0)),
        min=_bound(info.get(f"ds[{DS_NAME}].min")),
        max=_bound(info.get(f"ds[{DS_NAME}].max")),
        rras=tuple(rras),
        last_update=_int(info.get("last_update", 0)),
    )


def _int(value: object) -> int:
    try:
        return int(float(str(value)))
    except ValueError:
        return 0


def wanted(step: int, spec: SeriesSpec, retention: Retention) -> Layout:
    """The layout a new file of ``spec`` gets under this configuration."""
    rras = []
    for arg in rra_args(step, spec.retention or retention):
        _, cf, _xff, steps, rows = arg.split(":")
        rras.append((cf, int(steps), int(rows)))
    return Layout(step, spec.ds_type, int(spec.heartbeat), spec.min, spec.max, tuple(rras))


def tunable(have: Layout, want: Layout) -> list[str]:
    """``rrdtool tune`` arguments for the heartbeat and bounds that differ (what a write retunes)."""
    args = []
    if have.heartbeat != want.heartbeat:
        args += ["--heartbeat", f"{DS_NAME}:{want.heartbeat}"]
    if not _same(have.min, want.min):
        args += ["--minimum", f"{DS_NAME}:{_u(want.min)}"]
    if not _same(have.max, want.max):
        args += ["--maximum", f"{DS_NAME}:{_u(want.max)}"]
    return args


def differences(have: Layout, want: Layout) -> list[str]:
    """Every difference, as a person reads it: ``heartbeat 120 -> 600``."""
    out = []
    for what, a, b in (
        ("step", have.step, want.step),
        ("DS type", have.ds_type, want.ds_type),
        ("heartbeat", have.heartbeat, want.heartbeat),
    ):
        if a != b:
            out.append(f"{what} {a} -> {b}")
    for bound, lo, hi in (("min", have.min, want.min), ("max", have.max, want.max)):
        if not _same(lo, hi):
            out.append(f"{bound} {_u(lo)} -> {_u(hi)}")
    if have.rras != want.rras:
        out.append(f"RRAs {_rras(have)} -> {_rras(want)}")
    return out


def _rras(layout: Layout) -> str:
    """The AVERAGE RRAs as resolution x rows (MIN and MAX follow the same plan)."""
    return " ".join(f"{steps * layout.step}s x {rows}" for cf, steps, rows in layout.rras if cf == "AVERAGE")


def _same(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b))


def _u(v: float | None) -> str:
    if v is None:
        return "U"
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def tune(path: Path, args: list[str]) -> None:
    """Apply ``rrdtool tune`` to a local file (the caller flushed rrdcached first)."""
    try:
        rrdtool.tune(str(path), *args)
    except rrdtool.OperationalError as exc:
        raise ArchiveError(f"cannot tune {path}: {exc}") from exc


def migrate(path: Path, step: int, spec: SeriesSpec, retention: Retention) -> None:
    """Rewrite a local file to the configured layout keeping its data (``rrdtool create --source``).

    The new file is written beside the old one and renamed over it, so a reader sees one or the other.
    The caller flushes rrdcached and has it forget the file first.
    """
    have = layout_of(rrdtool.info(str(path)))
    tmp = path.with_name(f".{path.name}.migrate")
    tmp.unlink(missing_ok=True)
    args = [
        str(tmp), "--source", str(path), "--step", str(step), "--start", str(have.last_update),
        ds_arg(spec), *rra_args(step, spec.retention or retention),
    ]  # fmt: skip
    try:
        rrdtool.create(*args)
        os.replace(tmp, path)
    except (rrdtool.OperationalError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise ArchiveError(f"cannot migrate {path}: {exc}") from exc

"""dCache billing rows -> per-bucket tallies (pure: no I/O, no clock).

Each table's rows arrive as mappings of the columns ``slurpers.dcache_sql`` selects (a column an older
schema lacks is None). A :class:`Tally` holds one bucket's ABSOLUTE sums (series name -> int) and the
samples of its GAUGE series; the bucket engine (``slurpers.dcache_buckets``) keeps and compares them.
The classification follows dCache's own writers (docs/slurpers/dcache.md): transfersize is the bytes
moved, negative sizes count 0, p2p rows from before dCache 2.7 have p2p NULL and a ``pool:`` initiator.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from slurpers.api import metric_name

Row = Mapping[str, Any]
TABLES = ("billinginfo", "doorinfo", "storageinfo", "hitinfo")
CATEGORIES = ("read", "write", "p2p")
#: GAUGE families: name -> (series prefix); each gives <prefix>.mean and <prefix>.max
GAUGES = ("conn_time.read", "conn_time.write", "tape.restore.wait")

# per-login cells: GFTP-host-AAYlasmRVVA (base64url of a µs counter), old dCache GFTP-host-<unknown>-1092629
_LOGIN_SUFFIX = re.compile(r"-(?:AA[A-Za-z0-9_-]{9}|<unknown>-\d+)$")
_VERSION = re.compile(r"-\d+(?:\.\d+)*$")


@dataclass
class Tally:
    """One bucket of one table: ABSOLUTE sums, GAUGE samples (seconds), unique and raw row counts."""

    sums: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[float]] = field(default_factory=dict)
    unique: int = 0
    raw: int = 0
    seen: set[object] = field(default_factory=set, repr=False)

    def sample(self, family: str, seconds: float) -> None:
        self.samples.setdefault(family, []).append(seconds)

    def gauges(self) -> dict[str, float | None]:
        """``<family>.mean`` and ``<family>.max`` of every GAUGE family; None (unknown) without samples."""
        out: dict[str, float | None] = {}
        for family in GAUGES:
            got = self.samples.get(family)
            out[f"{family}.mean"] = sum(got) / len(got) if got else None
            out[f"{family}.max"] = max(got) if got else None
        return out


# -- names ----------------------------------------------------------------------------------------


def _part(text: str) -> str:
    """A dynamic name part: dots would make names ambiguous (vo.a.b.read), so they become '_'."""
    return metric_name(text.replace(".", "_"))


@functools.lru_cache(maxsize=4096)  # a handful of distinct values, tens of thousands of rows
def door_name(cellname: object) -> str:
    """``GFTP-host-AAYlasmRVVA@gridftp-hostDomain`` -> ``GFTP-host``: one name per door, not per login."""
    if not isinstance(cellname, str) or not cellname.strip():
        return "unknown"
    cell = cellname.strip().split("@", 1)[0]
    return _part(_LOGIN_SUFFIX.sub("", cell) or "unknown")


@functools.lru_cache(maxsize=4096)  # a handful of distinct values, tens of thousands of rows
def protocol_family(protocol: object) -> str:
    """``GFtp-2.0`` -> ``GFtp``; ``<unknown>``, NULL or empty -> ``unknown``."""
    if not isinstance(protocol, str) or not protocol.strip() or protocol.strip() == "<unknown>":
        return "unknown"
    return _part(_VERSION.sub("", protocol.strip()) or "unknown")


@functools.lru_cache(maxsize=4096)  # a handful of distinct values, tens of thousands of rows
def vo_name(fqan: object, storageclass: object) -> str:
    """The FQAN's first component, else the OSM store / Enstore storage group, else ``unknown``."""
    if isinstance(fqan, str):
        first = fqan.strip().lstrip("/").split("/", 1)[0].strip()
        if first and "=" not in first:
            return _part(first.lower())
    if isinstance(storageclass, str) and storageclass.strip():
        cls, _, hsm = storageclass.strip().partition("@")
        head = cls.split(".", 1)[0] if hsm.lower() == "enstore" else cls.split(":", 1)[0]
        if head.strip():
            return _part(head.strip().lower())
    return "unknown"


# -- numbers --------------------------------------------------------------------------------------


class BadNumber(ValueError):
    """A numeric column holds NaN, infinity or a fraction (possible in 2007 ``numeric`` columns)."""


def as_int(value: object) -> int | None:
    """bigint/integer/numeric (Decimal) -> int; None stays None; NaN, infinity, fractions -> BadNumber."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, (Decimal, float)):
        try:
            if isinstance(value, float) and not math.isfinite(value):
                raise BadNumber(repr(value))
            if value != value.to_integral_value() if isinstance(value, Decimal) else not value.is_integer():
                raise BadNumber(repr(value))
            return int(value)
        except (InvalidOperation, ValueError, OverflowError):
            raise BadNumber(repr(value)) from None
    raise BadNumber(repr(value))


def _int_or_bad(row: Row, column: str, bad: list[bool]) -> int | None:
    try:
        return as_int(row.get(column))
    except BadNumber:
        bad[0] = True
        return None


def _error_code(row: Row, bad: list[bool]) -> str | None:
    """None when the row succeeded (errorcode 0 or NULL), else the code as text ('invalid': not a number)."""
    try:
        code = as_int(row.get("errorcode"))
    except BadNumber:
        bad[0] = True
        return "invalid"
    return None if code is None or code == 0 else str(code)


def _finish(tally: Tally, bad: list[bool]) -> None:
    if bad[0]:
        tally.sums["anomaly.bad_number"] += 1


# -- one row of each table -------------------------------------------------------------------------


def mover_category(row: Row) -> str:
    """p2p (p2p true, or NULL with a ``pool:`` initiator), else write (isnew), else read."""
    p2p = row.get("p2p")
    initiator = row.get("initiator")
    if p2p is True or (p2p is None and isinstance(initiator, str) and initiator.startswith("pool:")):
        return "p2p"
    return "write" if row.get("isnew") is True else "read"


def add_mover(row: Row, tally: Tally) -> None:
    """One billinginfo row (a finished mover)."""
    bad = [False]
    cat = mover_category(row)
    size = _int_or_bad(row, "transfersize", bad)
    code = _error_code(row, bad)
    millis = _int_or_bad(row, "connectiontime", bad)
    if size is not None and size < 0:
        tally.sums["anomaly.negative_size"] += 1
    nbytes = max(size or 0, 0)
    failed = code is not None
    s = tally.sums
    s[f"{cat}.bytes"] += nbytes
    s[f"{cat}.failed" if failed else f"{cat}.transfers"] += 1
    if code is not None:
        s[f"errors.{_part(code)}"] += 1
    if cat != "p2p":
        family = protocol_family(row.get("protocol"))
        s[f"proto.{family}.{cat}.bytes"] += nbytes
        s[f"proto.{family}.{cat}.{'failed' if failed else 'transfers'}"] += 1
        s[f"vo.{vo_name(row.get('fqan'), row.get('storageclass'))}.{cat}.bytes"] += nbytes
        if not failed and size is not None and size >= 0 and millis is not None and millis >= 0:
            tally.sample(f"conn_time.{cat}", millis / 1000.0)
    _finish(tally, bad)


def add_door(row: Row, tally: Tally) -> None:
    """One doorinfo row: requests (all, failed, by error code) and removes per normalised door."""
    bad = [False]
    action = row.get("action")
    door = door_name(row.get("cellname"))
    code = _error_code(row, bad)
    if action == "request":
        tally.sums[f"door.{door}.requests"] += 1
        if code is not None:
            tally.sums[f"door.{door}.failed"] += 1
            tally.sums[f"door.errors.{_part(code)}"] += 1
    elif action == "remove":
        tally.sums[f"door.{door}.removes"] += 1
    _finish(tally, bad)


def add_storage(row: Row, tally: Tally) -> None:
    """One storageinfo row (tape flush 'store' or stage 'restore'), already bucketed by completion."""
    bad = [False]
    action = row.get("action")
    code = _error_code(row, bad)
    size = _int_or_bad(row, "fullsize", bad)
    queued = _int_or_bad(row, "queuedtime", bad)
    if action in ("store", "restore"):
        if code is not None:
            tally.sums[f"tape.{action}.failed"] += 1
        else:
            tally.sums[f"tape.{action}.files"] += 1
            tally.sums[f"tape.{action}.bytes"] += max(size or 0, 0)
            if action == "restore" and queued is not None and queued >= 0:
                tally.sample("tape.restore.wait", queued / 1000.0)
    _finish(tally, bad)


def add_hit(row: Row, tally: Tally) -> None:
    """One hitinfo row: a pool selection that found the file cached, or had to stage it."""
    cached = row.get("filecached")
    if cached is True:
        tally.sums["cache.hits"] += 1
    elif cached is False:
        tally.sums["cache.misses"] += 1


ADD = {"billinginfo": add_mover, "doorinfo": add_door, "storageinfo": add_storage, "hitinfo": add_hit}


def ambiguous(local: object, zone: ZoneInfo | None) -> bool:
    """A naive wall time that occurs twice (DST fall-back) or never (spring-forward gap) in ``zone``."""
    if zone is None or not isinstance(local, datetime) or local.tzinfo is not None:
        return False
    first = local.replace(tzinfo=zone, fold=0).utcoffset()
    second = local.replace(tzinfo=zone, fold=1).utcoffset()
    return first != second


def add_row(table: str, row: Row, tally: Tally, zone: ZoneInfo | None = None) -> None:
    """Count one row into its bucket's tally; an exact duplicate (same ``rowhash``) counts once."""
    tally.raw += 1
    key = row.get("rowhash")
    if key in tally.seen:
        tally.sums["slurper.duplicates"] += 1
        return
    tally.seen.add(key)
    tally.unique += 1
    tally.sums["slurper.rows"] += 1
    ADD[table](row, tally)
    if zone is not None and ambiguous(row.get("datestamp"), zone):
        tally.sums["anomaly.ambiguous_time"] += 1


def tally_rows(table: str, rows: Iterable[Row], zone: ZoneInfo | None = None) -> Tally:
    """Count the rows of one bucket of one table."""
    tally = Tally()
    for row in rows:
        add_row(table, row, tally, zone)
    return tally

"""Totals of every ABSOLUTE series computed independently, in SQL, straight from the billing tables.

Written apart from the slurper (no code shared): the same rules as docs/slurpers/dcache.md say them,
so a test comparing the archive's sums with these checks the slurper against the documentation.
"""

# ruff: noqa: E501 - SQL reads better unbroken
from __future__ import annotations

from collections import Counter

from tests.dcache.conftest import BillingDB

DOOR = r"regexp_replace(split_part(coalesce(cellname, 'unknown'), '@', 1), '-(AA[A-Za-z0-9_-]{9}|<unknown>-[0-9]+)$', '')"
FAMILY = r"coalesce(nullif(nullif(regexp_replace(protocol, '-[0-9]+(\.[0-9]+)*$', ''), '<unknown>'), ''), 'unknown')"
VO = (
    "lower(coalesce(nullif(split_part(ltrim(fqan, '/'), '/', 1), ''), "
    "CASE WHEN split_part(storageclass, '@', 2) = 'enstore' THEN split_part(split_part(storageclass, '@', 1), '.', 1) "
    "ELSE nullif(split_part(split_part(storageclass, '@', 1), ':', 1), '') END, 'unknown'))"
)


def _instant(schema: str, table: str, tz: str | None) -> str:
    base = f"(datestamp AT TIME ZONE '{tz}')" if tz else "datestamp"
    if table == "storageinfo":
        return f"({base} + (greatest(coalesce(queuedtime, 0), 0) + greatest(coalesce(connectiontime, 0), 0)) * interval '1 ms')"
    return base


def _rows(schema: str, table: str, lo: int, hi: int, tz: str | None) -> str:
    inst = _instant(schema, table, tz)
    return (
        f"(SELECT DISTINCT * FROM {schema}.{table} "
        f"WHERE {inst} >= to_timestamp({lo}) AND {inst} < to_timestamp({hi}))"
    )


def sql_totals(db: BillingDB, schema: str, lo: int, hi: int, tz: str | None = None) -> Counter[str]:
    """Series name -> total over event times in [lo, hi)."""
    out: Counter[str] = Counter()
    cols = {r[0] for r in db.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = 'billinginfo'",
        (schema,),
    )}  # fmt: skip
    p2p = "p2p" if "p2p" in cols else "NULL::boolean"
    fqan = "fqan" if "fqan" in cols else "NULL::text"
    movers = f"""
        SELECT CASE WHEN {p2p} IS TRUE OR ({p2p} IS NULL AND initiator LIKE 'pool:%') THEN 'p2p'
                    WHEN isnew THEN 'write' ELSE 'read' END AS cat,
               greatest(coalesce(transfersize, 0), 0) AS nbytes,
               coalesce(errorcode, 0) <> 0 AS failed, errorcode, {FAMILY} AS family,
               {VO.replace("fqan", fqan)} AS vo, transfersize
        FROM {_rows(schema, "billinginfo", lo, hi, tz)} b"""
    for cat, family, vo, failed, code, n, nbytes, negative in db.query(
        f"SELECT cat, family, vo, failed, errorcode, count(*), sum(nbytes), count(*) FILTER (WHERE transfersize < 0) "
        f"FROM ({movers}) m GROUP BY 1, 2, 3, 4, 5"
    ):
        nbytes, n = int(nbytes), int(n)
        out[f"{cat}.bytes"] += nbytes
        out[f"{cat}.{'failed' if failed else 'transfers'}"] += n
        out["anomaly.negative_size"] += int(negative)
        if failed:
            out[f"errors.{int(code)}"] += n
        if cat != "p2p":
            out[f"proto.{family}.{cat}.bytes"] += nbytes
            out[f"proto.{family}.{cat}.{'failed' if failed else 'transfers'}"] += n
            out[f"vo.{vo}.{cat}.bytes"] += nbytes
    for door, action, code, n in db.query(
        f"SELECT {DOOR}, action, errorcode, count(*) FROM {_rows(schema, 'doorinfo', lo, hi, tz)} d GROUP BY 1, 2, 3"
    ):
        if action == "request":
            out[f"door.{door}.requests"] += int(n)
            if code not in (None, 0):
                out[f"door.{door}.failed"] += int(n)
                out[f"door.errors.{int(code)}"] += int(n)
        elif action == "remove":
            out[f"door.{door}.removes"] += int(n)
    for action, failed, n, nbytes in db.query(
        f"SELECT action, coalesce(errorcode, 0) <> 0, count(*), sum(greatest(coalesce(fullsize, 0), 0)) "
        f"FROM {_rows(schema, 'storageinfo', lo, hi, tz)} s WHERE action IN ('store', 'restore') GROUP BY 1, 2"
    ):
        if failed:
            out[f"tape.{action}.failed"] += int(n)
        else:
            out[f"tape.{action}.files"] += int(n)
            out[f"tape.{action}.bytes"] += int(nbytes)
    for cached, n in db.query(
        f"SELECT filecached, count(*) FROM {_rows(schema, 'hitinfo', lo, hi, tz)} h GROUP BY 1"
    ):
        if cached is not None:
            out["cache.hits" if cached else "cache.misses"] += int(n)
    for table in ("billinginfo", "doorinfo", "storageinfo", "hitinfo"):
        inst = _instant(schema, table, tz)
        ((distinct, raw),) = db.query(
            f"SELECT (SELECT count(*) FROM {_rows(schema, table, lo, hi, tz)} x), count(*) FROM {schema}.{table} "
            f"WHERE {inst} >= to_timestamp({lo}) AND {inst} < to_timestamp({hi})"
        )
        out["slurper.rows"] += int(distinct)
        out["slurper.duplicates"] += int(raw) - int(distinct)
    return +out

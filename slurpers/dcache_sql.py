"""The dCache billing database: schema detection and the only queries the dcache slurper runs.

PostgreSQL first (SQLAlchemy 2 + psycopg 3). Every query reads an indexed ``datestamp`` range of one
fine-grained table, never ``SELECT *``, never the ``*_hourly`` views or ``*_daily`` tables. The bucket
of a row (``floor(epoch / step)``) is computed by PostgreSQL, so the row read and the row counted in a
re-count land in the same bucket whatever the column's type.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slurpers.dcache_classify import TABLES

log = logging.getLogger(__name__)
APPLICATION_NAME = "rexmon-dcache"
#: the columns each table's classification needs; one an older schema lacks is selected as NULL
COLUMNS: dict[str, tuple[str, ...]] = {
    "billinginfo": (
        "isnew", "p2p", "initiator", "protocol", "transfersize", "connectiontime", "errorcode",
        "storageclass", "fqan",
    ),
    "doorinfo": ("cellname", "action", "errorcode"),
    "storageinfo": ("action", "errorcode", "fullsize", "queuedtime"),
    "hitinfo": ("filecached",),
}  # fmt: skip
#: columns whose absence is expected on older databases (p2p before 2.7, fqan/owner before 2.16)
OPTIONAL = {"p2p", "fqan", "owner"}
#: widening of a naive (local wall time) index range: covers any DST shift (at most 2 h, Troll)
_NAIVE_SLACK = timedelta(hours=3)
#: [lo, hi) in UTC epoch seconds
Interval = tuple[int, int]
#: rows per round trip of the server-side cursor
_FETCH = 5000
_BIND = re.compile(r"(?<![:\w]):(\w+)")


def _pyformat(sql: str) -> str:
    """SQLAlchemy's ``:name`` parameters as psycopg's ``%(name)s`` (``::type`` casts left alone)."""
    return _BIND.sub(r"%(\1)s", sql)


class SchemaError(Exception):
    """The database does not look like a dCache billing database (or needs a setting)."""


@dataclass(frozen=True)
class TableShape:
    """What information_schema says about one table."""

    name: str
    columns: Mapping[str, str]  # column -> data_type

    @property
    def naive(self) -> bool:
        return self.columns.get("datestamp") == "timestamp without time zone"

    def numeric(self) -> list[str]:
        return sorted(c for c, t in self.columns.items() if t == "numeric")

    def missing(self) -> list[str]:
        return sorted(c for c in COLUMNS[self.name] if c not in self.columns)


@dataclass(frozen=True)
class Schema:
    """The detected variant: which tables exist, their time column type, their numeric counters."""

    name: str
    tables: Mapping[str, TableShape]
    #: server_version_num: hash_record_extended (a 64-bit hash of a whole row) exists from 14 on
    server_version: int = 140000

    def describe(self) -> str:
        parts = []
        for t in self.tables.values():
            kind = "timestamp without time zone" if t.naive else "timestamptz"
            extra = f", numeric {'/'.join(t.numeric())}" if t.numeric() else ""
            gone = f", no {'/'.join(t.missing())}" if t.missing() else ""
            parts.append(f"{t.name} ({kind}{extra}{gone})")
        return "; ".join(parts)


def detect(conn: Any, schema: str, local_timezone: str) -> Schema:
    """Read ``information_schema.columns``; refuse a naive ``datestamp`` without ``local_timezone``."""
    from sqlalchemy import text

    rows = conn.execute(
        text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = :schema AND table_name IN :tables"
        ).bindparams(_expanding("tables")),
        {"schema": schema, "tables": list(TABLES)},
    ).all()
    cols: dict[str, dict[str, str]] = {}
    for table, column, dtype in rows:
        cols.setdefault(str(table), {})[str(column)] = str(dtype)
    if "billinginfo" not in cols:
        raise SchemaError(
            f"schema {schema!r} has no table billinginfo: not a dCache billing database "
            "(check url and schema, and that the role may read it)"
        )
    shapes = {}
    for table in TABLES:
        if table not in cols:
            log.warning("dcache: schema %s has no table %s; its metrics stay 0", schema, table)
            continue
        shape = TableShape(table, cols[table])
        if "datestamp" not in shape.columns:
            raise SchemaError(f"{schema}.{table} has no column datestamp: not a dCache billing table")
        needed = [c for c in shape.missing() if c not in OPTIONAL]
        if needed:
            raise SchemaError(f"{schema}.{table} lacks the column(s) {', '.join(needed)}")
        if shape.naive and not local_timezone:
            raise SchemaError(
                f"{schema}.{table}.datestamp is 'timestamp without time zone' (local wall time, a database "
                "created by dCache 2.0 or older): set local_timezone to the zone the dCache hosts run "
                'in, e.g. local_timezone = "Europe/Berlin"'
            )
        shapes[table] = shape
    version = int(conn.exec_driver_sql("SHOW server_version_num").scalar() or 0)
    return Schema(schema, shapes, version)


def _expanding(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name, expanding=True)


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


@dataclass
class Queries:
    """SQL of one schema variant; ``run``/``stream`` measure the database time they take."""

    schema: Schema
    step: int
    zone: ZoneInfo | None
    tape_lookback: float
    db_seconds: float = 0.0

    def _table(self, table: str) -> TableShape:
        return self.schema.tables[table]

    def _instant(self, table: str) -> str:
        """The event instant (timestamptz) of a row: storageinfo rows complete after their datestamp."""
        base = "t.datestamp AT TIME ZONE :tz" if self._table(table).naive else "t.datestamp"
        if table != "storageinfo":
            return f"({base})"
        ms = " + ".join(
            f"CASE WHEN t.{c} >= 0 AND t.{c} < 1e12 THEN t.{c}::float8 ELSE 0 END"
            for c in ("queuedtime", "connectiontime")
        )
        return f"(({base}) + ({ms}) * interval '1 millisecond')"

    def _exact(self, table: str) -> bool:
        """Whether the index range alone is not the event-time range (naive column, tape completion)."""
        return table == "storageinfo" or self._table(table).naive

    def _where(self, table: str) -> str:
        inst = self._instant(table)
        exact = f" AND {inst} >= :lo AND {inst} < :hi" if self._exact(table) else ""
        return "t.datestamp >= :ilo AND t.datestamp < :ihi" + exact

    def _params(self, table: str, lo: int, hi: int) -> dict[str, Any]:
        """Index bounds in the column's own type (never a cast of the column) and exact bounds."""
        alo, ahi = datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)
        params: dict[str, Any] = {"step": self.step}
        if self._exact(table):
            params["lo"], params["hi"] = alo, ahi
        if table == "storageinfo":  # datestamp is the request's creation: it completes up to days later
            alo -= timedelta(seconds=self.tape_lookback)
        if self._table(table).naive:
            assert self.zone is not None
            params["tz"] = self.zone.key
            params["ilo"] = (alo - _NAIVE_SLACK).astimezone(self.zone).replace(tzinfo=None)
            params["ihi"] = (ahi + _NAIVE_SLACK).astimezone(self.zone).replace(tzinfo=None)
        else:
            params["ilo"], params["ihi"] = alo, ahi
        return params

    def rows_sql(self, table: str) -> str:
        shape = self._table(table)
        cols = [f"t.{c}" if c in shape.columns else f"NULL AS {c}" for c in COLUMNS[table]]
        if shape.naive:
            cols.append("t.datestamp")
        # identity of an exact duplicate: the whole row (a 64-bit hash; md5 of its text before PG 14)
        rowhash = "hash_record_extended(t, 0)" if self.schema.server_version >= 140000 else "md5(t::text)"
        return (
            f"SELECT {self._bucket(table)} AS bucket, {rowhash} AS rowhash, {', '.join(cols)} "
            f"FROM {_quote(self.schema.name)}.{table} t WHERE {self._where(table)}"
        )

    def _bucket(self, table: str) -> str:
        """The row's bucket; double precision is exact enough for µs timestamps and twice as fast."""
        return f"floor(date_part('epoch', {self._instant(table)}) / :step)::bigint"

    def counts_sql(self, table: str) -> str:
        return (
            f"SELECT {self._bucket(table)} AS bucket, count(*) AS n "
            f"FROM {_quote(self.schema.name)}.{table} t WHERE {self._where(table)} GROUP BY 1"
        )

    def newest_sql(self) -> str:
        inst = self._instant("billinginfo")
        return (
            f"SELECT extract(epoch FROM max({inst})) FROM {_quote(self.schema.name)}.billinginfo t "
            f"WHERE {self._where('billinginfo')}"
        )

    def stream(self, conn: Any, table: str, span: Interval) -> Iterator[Mapping[str, Any]]:
        """Rows of ``table`` with event time in ``span``, through a server-side cursor.

        The hot path goes to psycopg's named cursor under SQLAlchemy's connection (same session and
        transaction), which costs a third of SQLAlchemy's row objects. ``db_seconds`` counts the time
        spent waiting for the database (execute and each fetch), not the caller's work between rows.
        """
        raw = conn.connection.driver_connection
        started = time.monotonic()
        with raw.cursor(name=f"rexmon_dcache_{table}") as cur:
            cur.execute(_pyformat(self.rows_sql(table)), self._params(table, *span))
            names = [d.name for d in cur.description or ()]
            self.db_seconds += time.monotonic() - started
            while True:
                started = time.monotonic()
                rows = cur.fetchmany(_FETCH)
                self.db_seconds += time.monotonic() - started
                if not rows:
                    return
                for row in rows:
                    yield dict(zip(names, row, strict=True))

    def counts(self, conn: Any, table: str, span: Interval) -> dict[int, int]:
        """Raw row count per bucket (GROUP BY over the datestamp index), for the re-count."""
        from sqlalchemy import text

        started = time.monotonic()
        try:
            got = conn.execute(text(self.counts_sql(table)), self._params(table, *span)).all()
        finally:
            self.db_seconds += time.monotonic() - started
        return {int(b): int(n) for b, n in got}

    def newest(self, conn: Any, span: Interval) -> float | None:
        """Epoch of the newest billinginfo row in ``span`` (for ``slurper.lag``)."""
        from sqlalchemy import text

        started = time.monotonic()
        try:
            value = conn.execute(text(self.newest_sql()), self._params("billinginfo", *span)).scalar()
        finally:
            self.db_seconds += time.monotonic() - started
        return None if value is None else float(value)

"""dCache billing database: transfers, doors, tape and cache statistics per archive step.

Reads the fine-grained tables of dCache's billing database (``billinginfo``, ``doorinfo``,
``storageinfo``, ``hitinfo``) over a read-only PostgreSQL session, counts their rows into event-time
buckets aligned to the archive step (``slurpers.dcache_buckets``) and classifies them with pure
functions (``slurpers.dcache_classify``). The schema variant (fresh or upgraded from 2007) is detected
from ``information_schema`` at the first run and after any SQL error (``slurpers.dcache_sql``).
See docs/slurpers/dcache.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slurpers.api import (
    CollectContext,
    Duration,
    MetricSpec,
    Reading,
    Secret,
    Slurper,
    SlurperError,
    settings,
)
from slurpers.dcache_buckets import Interval, Plan, poll
from slurpers.dcache_classify import CATEGORIES, Tally, add_row
from slurpers.dcache_sql import APPLICATION_NAME, Queries, Schema, SchemaError, detect

log = logging.getLogger(__name__)


@settings
class DCacheSettings:
    #: SQLAlchemy/libpq URL of the billing database, by reference: { env = "DCACHE_BILLING_URL" }
    url: Secret
    #: the PostgreSQL schema holding the billing tables
    schema: str = "public"
    #: must equal [archive] step: buckets are aligned to it (rexmon check says when they differ)
    step: int = 60
    #: buckets close this long after their end (rows are committed late, in batches, by 10 threads)
    lag: Duration = 120.0
    #: closed buckets are re-counted this far back; rows arriving later than that are not counted
    late_horizon: Duration = 7200.0
    #: how often the re-count runs
    reconcile_every: Duration = 300.0
    #: storageinfo.datestamp is the request's creation: rows are read this far back for completions
    tape_lookback: Duration = 14 * 86400.0
    #: on the first run, start this far before now - lag (0: start now)
    backfill: Duration = 0.0
    #: zone of a 'timestamp without time zone' datestamp (databases created by dCache <= 2.0)
    local_timezone: str = ""
    #: per query, on the database side
    statement_timeout: Duration = 60.0

    def __post_init__(self) -> None:
        if self.step <= 0:
            raise ValueError("step must be a positive number of seconds (the archive step)")
        if self.local_timezone:
            try:
                ZoneInfo(self.local_timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"local_timezone {self.local_timezone!r} is not a known time zone") from None
        if not self.schema.strip():
            raise ValueError("schema must name a PostgreSQL schema, e.g. public")


def specs() -> list[MetricSpec]:
    """The metric families this slurper writes (ABSOLUTE per bucket unless GAUGE)."""

    def absolute(name: str, unit: str, graph: str, description: str = "") -> MetricSpec:
        return MetricSpec(name, "ABSOLUTE", unit=unit, min=0, graph=graph, description=description)

    out = []
    for cat in CATEGORIES:
        out += [
            absolute(f"{cat}.bytes", "B/s", "bytes", "bytes moved, failed movers included"),
            absolute(f"{cat}.transfers", "transfers/s", "transfers", "movers with errorcode 0"),
            absolute(f"{cat}.failed", "transfers/s", "failed", "movers with errorcode not 0"),
        ]
        if cat != "p2p":
            out += [absolute(f"proto.*.{cat}.{k}", u, f"proto.<family>.{k}") for k, u in _PER_PROTO]
            out.append(absolute(f"vo.*.{cat}.bytes", "B/s", "vo.<vo>.bytes"))
            out += [
                MetricSpec(f"conn_time.{cat}.{k}", unit="s", min=0, graph=f"conn_time.{cat}") for k in _MM
            ]
    out.append(absolute("errors.*", "transfers/s", "errors", "failed movers by error code"))
    out += [absolute("door.errors.*", "requests/s", "door.errors", "failed door requests by code")]
    for k in ("requests", "failed", "removes"):
        out.append(absolute(f"door.*.{k}", "requests/s", "door.<door>"))
    for action in ("store", "restore"):
        out += [
            absolute(f"tape.{action}.files", "files/s", f"tape.{action}"),
            absolute(f"tape.{action}.bytes", "B/s", f"tape.{action}.bytes"),
            absolute(f"tape.{action}.failed", "files/s", f"tape.{action}"),
        ]
    out += [MetricSpec(f"tape.restore.wait.{k}", unit="s", min=0, graph="tape.restore.wait") for k in _MM]
    out += [absolute(f"cache.{k}", "selections/s", "cache") for k in ("hits", "misses")]
    for name in ("anomaly.negative_size", "anomaly.ambiguous_time", "anomaly.bad_number"):
        out.append(absolute(name, "rows/s", "anomaly"))
    for name in ("slurper.rows", "slurper.late", "slurper.duplicates"):
        out.append(absolute(name, "rows/s", "slurper.rows"))
    out += [
        MetricSpec("slurper.lag", unit="s", graph="slurper.lag", description="now - newest row seen"),
        MetricSpec("slurper.query_time", unit="s", min=0, graph="slurper.query_time"),
    ]
    return out


_PER_PROTO = (("bytes", "B/s"), ("transfers", "transfers/s"), ("failed", "transfers/s"))
_MM = ("mean", "max")


def engine_url(raw: str) -> str:
    """``postgresql://...`` -> ``postgresql+psycopg://...`` (the psycopg 3 driver); others kept."""
    for prefix in ("postgresql://", "postgres://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


class _SQLSource:
    """The bucket engine's view of the database: one connection, one read-only transaction per run."""

    def __init__(self, conn: Any, queries: Queries, zone: ZoneInfo | None) -> None:
        self.conn = conn
        self.queries = queries
        self.zone = zone
        self.tables: Sequence[str] = list(queries.schema.tables)

    def tallies(self, table: str, span: Interval) -> dict[int, Tally]:
        out: dict[int, Tally] = {}
        for row in self.queries.stream(self.conn, table, span):
            bucket = int(row["bucket"])
            tally = out.get(bucket)
            if tally is None:
                tally = out[bucket] = Tally()
            add_row(table, row, tally, self.zone)
        return out

    def counts(self, table: str, span: Interval) -> dict[int, int]:
        return self.queries.counts(self.conn, table, span)

    def newest(self, span: Interval) -> float | None:
        return self.queries.newest(self.conn, span)

    def db_seconds(self) -> float:
        return self.queries.db_seconds


class DCacheSlurper(Slurper[DCacheSettings]):
    def __init__(self, slurper_id: str, settings: DCacheSettings, *, interval: float, timeout: float) -> None:
        super().__init__(slurper_id, settings, interval=interval, timeout=timeout)
        self._engine: Any = None
        self._schema: Schema | None = None

    def metrics(self) -> Sequence[MetricSpec]:
        return specs()

    def plan(self) -> Plan:
        s = self.settings
        return Plan(s.step, s.lag, s.late_horizon, s.reconcile_every, s.backfill)

    def _engine_for(self) -> Any:
        if self._engine is None:
            from sqlalchemy import create_engine

            s = self.settings
            options = (
                f"-c TimeZone=UTC -c default_transaction_read_only=on "
                f"-c statement_timeout={int(s.statement_timeout * 1000)}"
            )
            self._engine = create_engine(
                engine_url(s.url.get()),
                pool_size=1,
                max_overflow=0,
                pool_pre_ping=True,
                connect_args={
                    "application_name": APPLICATION_NAME,
                    "options": options,
                    "connect_timeout": 10,
                },
            )
        return self._engine

    def collect(self, ctx: CollectContext) -> Sequence[Reading]:
        from sqlalchemy.exc import SQLAlchemyError

        s = self.settings
        zone = ZoneInfo(s.local_timezone) if s.local_timezone else None
        try:
            with self._engine_for().connect() as conn:
                # every session: UTC, read only, statement timeout (libpq options above), and this
                # run's queries in one REPEATABLE READ snapshot so the tables agree with each other
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                if self._schema is None:
                    self._schema = detect(conn, s.schema, s.local_timezone)
                    log.info("dcache %s: %s", self.id, self._schema.describe())
                queries = Queries(self._schema, s.step, zone, s.tape_lookback)
                readings, state = poll(ctx.state, ctx.now, _SQLSource(conn, queries, zone), self.plan())
                conn.rollback()
        except SchemaError as exc:
            self._schema = None
            raise SlurperError(f"dcache {self.id}: {exc}") from None
        except SQLAlchemyError as exc:
            self._schema = None  # the schema may have changed under us (an upgrade): detect it again
            first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0]
            raise SlurperError(f"dcache {self.id}: billing database query failed: {first[:300]}") from None
        ctx.new_state = state
        return readings

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

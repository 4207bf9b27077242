"""The metric catalogue: how each archived metric is shown (unit, base, label, graph key, DS type).

The collector knows this from the slurpers' specs; the web must not instantiate slurpers to learn it,
and data flows one way. So the alarm sink of every collector host (the evaluating one and the shards
that only fill the inbox) records the shape of each metric it sees in the ``metric_meta`` table
(revisions ``0006_metric_meta``, ``0007_metric_draw``), writing a row only when it is new or changed;
the web and the API read the table (see docs/architecture.md, "The metric catalogue").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import astuple, dataclass
from typing import Any, cast

from sqlalchemy import Float, Integer, String, Table, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as DBEngine
from sqlalchemy.orm import Mapped, mapped_column

from alarms.observation import Observation
from downtime.db import Base

log = logging.getLogger(__name__)
_CHUNK = 5000


class MetricMetaRow(Base):
    """One row per metric a collector has archived (revisions ``0006_metric_meta``, ``0007_metric_draw``)."""

    __tablename__ = "metric_meta"
    metric_id: Mapped[str] = mapped_column(String(400), primary_key=True)
    unit: Mapped[str] = mapped_column(String(100), default="")
    base: Mapped[int] = mapped_column(Integer, default=1000)
    label: Mapped[str] = mapped_column(String(200), default="")
    graph: Mapped[str] = mapped_column(String(300), default="")
    ds_type: Mapped[str] = mapped_column(String(16), default="GAUGE")
    interval: Mapped[float] = mapped_column(Float, default=60.0)
    #: the slurper's default tolerances (an ``[[alarm]]`` rule may override them; alarm_state has those)
    warning: Mapped[str | None] = mapped_column(String(100), nullable=True)
    critical: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: how values are drawn: Munin's cdef and negative partner (revision ``0007_metric_draw``)
    cdef: Mapped[str] = mapped_column(String(400), default="")
    negative: Mapped[str] = mapped_column(String(400), default="")
    #: when the row was last written (by the collector's ``now``)
    updated: Mapped[float] = mapped_column(Float, default=0.0)


def _table() -> Table:
    return cast(Table, MetricMetaRow.__table__)


@dataclass(frozen=True)
class MetricMeta:
    """How one metric is shown."""

    unit: str = ""
    base: int = 1000
    label: str = ""
    graph: str = ""
    ds_type: str = "GAUGE"
    interval: float = 60.0
    warning: str | None = None
    critical: str | None = None
    #: rrdtool RPN over the field names of its graph, applied where values are drawn ("" for none)
    cdef: str = ""
    #: the metric drawn mirrored below the axis in this metric's graph ("" for none)
    negative: str = ""


#: what a metric without a catalogue row (archived before the catalogue existed) is shown as
UNKNOWN_META = MetricMeta()


def meta_of(obs: Observation) -> MetricMeta:
    return MetricMeta(
        obs.unit,
        obs.base,
        obs.label,
        obs.graph,
        obs.ds_type,
        obs.interval,
        obs.warning,
        obs.critical,
        obs.cdef,
        obs.negative,
    )


class CatalogueWriter:
    """Records the shape of observed metrics, writing only rows that are new or changed."""

    def __init__(self, db: DBEngine) -> None:
        self.db = db
        self._known: dict[str, MetricMeta] | None = None

    def note(
        self, conn: Connection, observations: Iterable[Observation], now: float
    ) -> dict[str, MetricMeta]:
        """Upsert the new or changed metrics of ``observations`` inside the caller's transaction.

        Returns them; pass them to :meth:`written` once the transaction has committed (a rolled back
        one leaves them unknown, so the next round writes them again).
        """
        known = self._load(conn)
        changed: dict[str, MetricMeta] = {}
        for obs in observations:
            meta = meta_of(obs)
            if known.get(obs.metric_id) != meta:
                changed[obs.metric_id] = meta
        if changed:
            _upsert(conn, [{"metric_id": m, **_columns(meta), "updated": now} for m, meta in changed.items()])
        return changed

    def written(self, changed: Mapping[str, MetricMeta]) -> None:
        """Remember rows whose transaction committed."""
        if self._known is not None:
            self._known.update(changed)

    def _load(self, conn: Connection) -> dict[str, MetricMeta]:
        if self._known is None:
            self._known = {mid: meta for mid, meta in read(conn).items()}
        return self._known


def _columns(meta: MetricMeta) -> dict[str, Any]:
    names = (
        "unit",
        "base",
        "label",
        "graph",
        "ds_type",
        "interval",
        "warning",
        "critical",
        "cdef",
        "negative",
    )
    return dict(zip(names, astuple(meta), strict=True))


def read(conn: Connection) -> dict[str, MetricMeta]:
    """The whole catalogue."""
    t = _table()
    rows = conn.execute(
        select(
            t.c.metric_id, t.c.unit, t.c.base, t.c.label, t.c.graph, t.c.ds_type, t.c.interval
        ).add_columns(t.c.warning, t.c.critical, t.c.cdef, t.c.negative)
    ).all()
    return {
        r[0]: MetricMeta(r[1], int(r[2]), r[3], r[4], r[5], float(r[6]), r[7], r[8], r[9] or "", r[10] or "")
        for r in rows
    }


def version(conn: Connection) -> tuple[int, float]:
    """Changes whenever a row is added, removed or rewritten: (rows, sum of their write times)."""
    t = _table()
    count, total = conn.execute(select(func.count(), func.coalesce(func.sum(t.c.updated), 0.0))).one()
    return int(count), float(total)


class CatalogueReader:
    """The catalogue as the web reads it: re-read only when :func:`version` changes.

    The version itself (a scan of the table) is asked at most once per ``recheck`` seconds of
    ``clock``: a page asks for the catalogue several times, and a new metric may wait a second.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, recheck: float = 1.0) -> None:
        self._version: tuple[int, float] | None = None
        self._meta: Mapping[str, MetricMeta] = {}
        self.clock, self.recheck = clock, recheck
        self._checked: float | None = None

    def get(self, db: DBEngine) -> Mapping[str, MetricMeta]:
        now = self.clock()
        if self._checked is not None and 0 <= now - self._checked < self.recheck:
            return self._meta
        self._checked = now
        try:
            with db.connect() as conn:
                now_version = version(conn)
                if now_version != self._version:
                    self._meta, self._version = read(conn), now_version
        except Exception as exc:  # an unmigrated or unreachable database: values without units
            log.warning("metric catalogue unavailable: %s", exc)
        return self._meta


def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    table = _table()
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        stmt = insert(table)
        cols = {c: stmt.excluded[c] for c in rows[0] if c != "metric_id"}
        for i in range(0, len(rows), _CHUNK):
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["metric_id"], set_=cols), rows[i : i + _CHUNK]
            )
        return
    for row in rows:  # other databases: delete + insert, inside the caller's transaction
        conn.execute(table.delete().where(table.c.metric_id == row["metric_id"]))
        conn.execute(table.insert(), row)

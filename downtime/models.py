"""Downtime tables: the downtime, its scope patterns, and the audit trail of every change."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from downtime.db import Base


class Downtime(Base):
    """A planned or unplanned downtime. Times are UTC epoch seconds; ``end`` is exclusive."""

    __tablename__ = "downtime"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    start: Mapped[float] = mapped_column(Float, nullable=False, index=True)
    end: Mapped[float] = mapped_column(Float, nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    severity: Mapped[str] = mapped_column(String(16), nullable=False)
    author: Mapped[str] = mapped_column(String(200), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    ticket: Mapped[str] = mapped_column(String(1000), nullable=False, default="")
    #: RFC 5545 recurrence rule; occurrences keep the local wall-clock time of ``start`` in ``tz``
    rrule: Mapped[str | None] = mapped_column(String(500), nullable=True)
    #: until (epoch) of the recurrence, set when a recurring downtime is ended early
    rrule_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    tz: Mapped[str] = mapped_column(String(64), nullable=False, default="UTC")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    cancel_reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created: Mapped[float] = mapped_column(Float, nullable=False)
    updated: Mapped[float] = mapped_column(Float, nullable=False)

    scopes: Mapped[list[DowntimeScope]] = relationship(
        back_populates="downtime", cascade="all, delete-orphan", lazy="selectin", order_by="DowntimeScope.id"
    )
    audit: Mapped[list[DowntimeAudit]] = relationship(
        back_populates="downtime", lazy="selectin", order_by="DowntimeAudit.id"
    )

    @property
    def scope(self) -> tuple[str, ...]:
        return tuple(s.pattern for s in self.scopes)


class DowntimeScope(Base):
    __tablename__ = "downtime_scope"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    downtime_id: Mapped[int] = mapped_column(ForeignKey("downtime.id"), nullable=False, index=True)
    pattern: Mapped[str] = mapped_column(String(400), nullable=False)
    downtime: Mapped[Downtime] = relationship(back_populates="scopes")


class DowntimeAudit(Base):
    """One change: create, extend, end, cancel. Never updated, never deleted."""

    __tablename__ = "downtime_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    downtime_id: Mapped[int] = mapped_column(ForeignKey("downtime.id"), nullable=False, index=True)
    at: Mapped[float] = mapped_column(Float, nullable=False)
    author: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    #: JSON: the fields changed, old and new
    detail: Mapped[str] = mapped_column(Text, nullable=False, default="{}")
    downtime: Mapped[Downtime] = relationship(back_populates="audit")

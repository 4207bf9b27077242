"""Downtimes, their scope patterns and the audit trail.

Revision ID: 0001_downtime
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_downtime"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the downtime tables (they mirror downtime.models)."""
    op.create_table(
        "downtime",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("ticket", sa.String(1000), nullable=False),
        sa.Column("rrule", sa.String(500), nullable=True),
        sa.Column("rrule_until", sa.Float, nullable=True),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cancel_reason", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_index("ix_downtime_start", "downtime", ["start"])
    op.create_index("ix_downtime_end", "downtime", ["end"])
    op.create_table(
        "downtime_scope",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("downtime_id", sa.Integer, sa.ForeignKey("downtime.id"), nullable=False),
        sa.Column("pattern", sa.String(400), nullable=False),
    )
    op.create_index("ix_downtime_scope_downtime_id", "downtime_scope", ["downtime_id"])
    op.create_table(
        "downtime_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("downtime_id", sa.Integer, sa.ForeignKey("downtime.id"), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_downtime_audit_downtime_id", "downtime_audit", ["downtime_id"])


def downgrade() -> None:
    op.drop_table("downtime_audit")
    op.drop_table("downtime_scope")
    op.drop_table("downtime")

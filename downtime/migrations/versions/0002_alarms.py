"""Alarm tables: per-metric state, history, acknowledgements, notification outbox.

Revision ID: 0002_alarms
Revises: 0001_downtime
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_alarms"
down_revision = "0001_downtime"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the alarm tables (they mirror alarms.store's models)."""
    op.create_table(
        "alarm_state",
        sa.Column("metric_id", sa.String(400), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("time", sa.Float, nullable=True),
        sa.Column("ds_type", sa.String(16), nullable=False),
        sa.Column("interval", sa.Float, nullable=False),
        sa.Column("spec_warning", sa.String(100), nullable=True),
        sa.Column("spec_critical", sa.String(100), nullable=True),
        sa.Column("raw_time", sa.Float, nullable=True),
        sa.Column("raw_value", sa.Float, nullable=True),
        sa.Column("pending", sa.String(16), nullable=True),
        sa.Column("pending_since", sa.Float, nullable=True),
        sa.Column("pending_count", sa.Integer, nullable=False),
        sa.Column("notified", sa.String(16), nullable=False),
        sa.Column("notified_at", sa.Float, nullable=True),
        sa.Column("acked", sa.Boolean, nullable=False),
        sa.Column("ack_author", sa.String(200), nullable=False),
        sa.Column("ack_comment", sa.Text, nullable=False),
        sa.Column("flapping", sa.Boolean, nullable=False),
        sa.Column("changes", sa.Text, nullable=False),
        sa.Column("downtime_id", sa.Integer, nullable=True),
        sa.Column("downtime_severity", sa.String(16), nullable=True),
        sa.Column("stale", sa.Boolean, nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
    )
    op.create_table(
        "alarm_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("metric_id", sa.String(400), nullable=False, index=True),
        sa.Column("time", sa.Float, nullable=False, index=True),
        sa.Column("old_state", sa.String(16), nullable=False),
        sa.Column("new_state", sa.String(16), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("downtime_id", sa.Integer, nullable=True),
    )
    op.create_table(
        "alarm_ack",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("metric_id", sa.String(400), nullable=False, index=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
    )
    op.create_table(
        "alarm_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("target", sa.String(200), nullable=False, index=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("metric_ids", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt", sa.Float, nullable=False, index=True),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("delivered_at", sa.Float, nullable=True, index=True),
    )


def downgrade() -> None:
    """Drop the alarm tables."""
    for name in ("alarm_outbox", "alarm_ack", "alarm_history", "alarm_state"):
        op.drop_table(name)

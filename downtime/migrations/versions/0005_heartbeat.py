"""Collector heartbeats and the watchdog's shared state (dead man's switch).

Revision ID: 0005_heartbeat
Revises: 0004_alarm_inbox
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_heartbeat"
down_revision = "0004_alarm_inbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create collector_heartbeat and watchdog_state (mirror rexmon.heartbeat's models)."""
    op.create_table(
        "collector_heartbeat",
        sa.Column("collector", sa.String(100), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("started", sa.Float, nullable=False),
        sa.Column("beat", sa.Float, nullable=False),
        sa.Column("round_seconds", sa.Float, nullable=True),
        sa.Column("rounds", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "watchdog_state",
        sa.Column("collector", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("changed", sa.Float, nullable=False),
        sa.Column("beat", sa.Float, nullable=True),
        sa.Column("claimed_by", sa.String(300), nullable=True),
        sa.Column("claimed_at", sa.Float, nullable=True),
        sa.Column("notified", sa.Float, nullable=True),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("watchdog_state")
    op.drop_table("collector_heartbeat")

"""Alarm inbox for collectors that do not evaluate; effective ranges and arrival time in alarm_state.

Revision ID: 0004_alarm_inbox
Revises: 0002_alarms
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_alarm_inbox"
down_revision = "0002_alarms"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create alarm_inbox (mirrors alarms.inbox.AlarmInboxRow); add the new alarm_state columns."""
    op.create_table(
        "alarm_inbox",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("metric_id", sa.String(400), nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("ds_type", sa.String(16), nullable=False),
        sa.Column("interval", sa.Float, nullable=False),
        sa.Column("warning", sa.String(100), nullable=True),
        sa.Column("critical", sa.String(100), nullable=True),
        sa.Column("arrived", sa.Float, nullable=False),
    )
    with op.batch_alter_table("alarm_state") as batch:
        batch.add_column(sa.Column("warning", sa.String(100), nullable=True))
        batch.add_column(sa.Column("critical", sa.String(100), nullable=True))
        batch.add_column(sa.Column("arrived", sa.Float, nullable=True))
    # until a metric's next value, show what was shown before: the slurper's defaults
    op.execute("UPDATE alarm_state SET warning = spec_warning, critical = spec_critical, arrived = time")


def downgrade() -> None:
    """Drop the inbox and the added columns."""
    with op.batch_alter_table("alarm_state") as batch:
        for name in ("arrived", "critical", "warning"):
            batch.drop_column(name)
    op.drop_table("alarm_inbox")

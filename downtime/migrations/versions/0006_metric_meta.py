"""The metric catalogue: unit, base, label, graph key and DS type of each archived metric.

Revision ID: 0006_metric_meta
Revises: 0005_heartbeat
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_metric_meta"
down_revision = "0005_heartbeat"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create metric_meta (mirrors alarms.catalogue.MetricMetaRow)."""
    op.create_table(
        "metric_meta",
        sa.Column("metric_id", sa.String(400), primary_key=True),
        sa.Column("unit", sa.String(100), nullable=False, server_default=""),
        sa.Column("base", sa.Integer, nullable=False, server_default="1000"),
        sa.Column("label", sa.String(200), nullable=False, server_default=""),
        sa.Column("graph", sa.String(300), nullable=False, server_default=""),
        sa.Column("ds_type", sa.String(16), nullable=False, server_default="GAUGE"),
        sa.Column("interval", sa.Float, nullable=False, server_default="60"),
        sa.Column("warning", sa.String(100), nullable=True),
        sa.Column("critical", sa.String(100), nullable=True),
        sa.Column("updated", sa.Float, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("metric_meta")

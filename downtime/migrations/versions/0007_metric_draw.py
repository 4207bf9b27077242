"""The metric catalogue learns how values are drawn: Munin's cdef and negative partner.

Revision ID: 0007_metric_draw
Revises: 0006_metric_meta
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_metric_draw"
down_revision = "0006_metric_meta"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add metric_meta.cdef and metric_meta.negative (mirrors alarms.catalogue.MetricMetaRow)."""
    with op.batch_alter_table("metric_meta") as batch:
        batch.add_column(sa.Column("cdef", sa.String(400), nullable=False, server_default=""))
        batch.add_column(sa.Column("negative", sa.String(400), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("metric_meta") as batch:
        batch.drop_column("negative")
        batch.drop_column("cdef")

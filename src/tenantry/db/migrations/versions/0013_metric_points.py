"""Metric series per tenant: aggregated buckets of recorded values (tenantry.monitoring).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.rls import create_tenant_table

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"


def upgrade() -> None:
    create_tenant_table(
        "metric_points",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("labels_key", sa.Text, nullable=False),
        sa.Column("resolution", sa.Integer, nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("writer", sa.Text, nullable=False),
        sa.Column("labels", JSONB, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("sum", sa.Float, nullable=False),
        sa.Column("min", sa.Float, nullable=False),
        sa.Column("max", sa.Float, nullable=False),
        sa.Column("sketch", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "name",
            "labels_key",
            "resolution",
            "bucket_start",
            "writer",
            name=op.f("pk_metric_points"),
        ),
        sa.CheckConstraint(
            "resolution in (10, 60, 3600)", name=op.f("ck_metric_points_resolution")
        ),
        sa.CheckConstraint("count > 0", name=op.f("ck_metric_points_count")),
    )
    op.create_index(
        "ix_metric_points_name_time",
        "metric_points",
        ["tenant_id", "name", "resolution", "bucket_start"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("metric_points", schema=SCHEMA)

"""A tenant's silences as objects of their own, with expiry (tenantry.alerts.silences).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

from tenantry.db.rls import create_tenant_table

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
NOW = sa.func.now()


def upgrade() -> None:
    create_tenant_table(
        "alert_silences",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("matchers", ARRAY(sa.Text), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_alert_silences")),
        sa.CheckConstraint(
            "cardinality(matchers) >= 1", name=op.f("ck_alert_silences_has_matchers")
        ),
        sa.CheckConstraint("ends_at >= starts_at", name=op.f("ck_alert_silences_ends_after")),
    )
    op.create_index(
        "ix_alert_silences_ends_at", "alert_silences", ["tenant_id", "ends_at"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_table("alert_silences", schema=SCHEMA)

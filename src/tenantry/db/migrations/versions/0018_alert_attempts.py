"""Every delivery attempt of an alert message (tenantry.alerts.dispatch).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantry.db.rls import create_tenant_table

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"


def upgrade() -> None:
    create_tenant_table(
        "alert_attempts",
        sa.Column("outbox_id", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint(
            "tenant_id", "outbox_id", "attempt", name=op.f("pk_alert_attempts")
        ),
    )


def downgrade() -> None:
    op.drop_table("alert_attempts", schema=SCHEMA)

"""A tenant's alert routing: route tree, inhibition rules and silences, as YAML.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantry.db.rls import create_tenant_table

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"


def upgrade() -> None:
    create_tenant_table(
        "alert_routing",
        sa.Column("source", sa.Text, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_alert_routing")),
    )


def downgrade() -> None:
    op.drop_table("alert_routing", schema=SCHEMA)

"""Alert rules per tenant and the state of each rule's alert (tenantry.alerts).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.rls import create_tenant_table

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
NOW = sa.func.now()


def upgrade() -> None:
    create_tenant_table(
        "alert_rules",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("definition", JSONB, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id", "name", name=op.f("pk_alert_rules")),
    )
    create_tenant_table(
        "alert_states",
        sa.Column("rule_name", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("active_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("observed", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.PrimaryKeyConstraint("tenant_id", "rule_name", name=op.f("pk_alert_states")),
        sa.CheckConstraint(
            "status in ('inactive', 'pending', 'firing', 'resolved')",
            name=op.f("ck_alert_states_status"),
        ),
    )


def downgrade() -> None:
    op.drop_table("alert_states", schema=SCHEMA)
    op.drop_table("alert_rules", schema=SCHEMA)

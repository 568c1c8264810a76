"""The knob changes of the performance manager's optimization rounds (tenantry.performance).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantry.db.rls import create_tenant_table

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"


def upgrade() -> None:
    create_tenant_table(
        "performance_changes",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("round_id", sa.Uuid, nullable=False),
        sa.Column("knob", sa.Text, nullable=False),
        sa.Column("strategy", sa.Text, nullable=False),
        sa.Column("old_value", sa.Float, nullable=False),
        sa.Column("new_value", sa.Float, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("score_before", sa.Float, nullable=False),
        sa.Column("score_after", sa.Float, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_performance_changes")),
        sa.CheckConstraint(
            "outcome in ('kept', 'rolled_back')", name=op.f("ck_performance_changes_outcome")
        ),
    )
    op.create_index(
        "ix_performance_changes_created_at",
        "performance_changes",
        ["tenant_id", "created_at"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("performance_changes", schema=SCHEMA)

"""Alert aggregation groups (tenantry.alerts.groups): the alerts of a route's group, its timings
and what its last notification listed; the outbox row names the group it came from.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from tenantry.db.rls import create_tenant_table

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
NOW = sa.func.now()


def upgrade() -> None:
    create_tenant_table(
        "alert_groups",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("group_key", sa.Text, nullable=False),
        sa.Column("route_path", sa.Text, nullable=False),
        sa.Column("receiver", sa.Text, nullable=False),
        sa.Column("group_labels", JSONB, nullable=False),
        sa.Column("group_wait", sa.Interval, nullable=False),
        sa.Column("group_interval", sa.Interval, nullable=False),
        sa.Column("repeat_interval", sa.Interval, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("flushed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_firing", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("notified_resolved", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("alerts", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("next_flush_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_alert_groups")),
    )
    op.create_index(
        "ix_alert_groups_due", "alert_groups", ["tenant_id", "next_flush_at"], schema=SCHEMA
    )
    op.add_column("alert_outbox", sa.Column("group_id", sa.Text, nullable=True), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("alert_outbox", "group_id", schema=SCHEMA)
    op.drop_table("alert_groups", schema=SCHEMA)

"""Alert delivery: each tenant's receivers (secrets sealed) and the durable outbox.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.rls import create_tenant_table

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
NOW = sa.func.now()


def upgrade() -> None:
    create_tenant_table(
        "alert_receivers",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=True),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id", "name", name=op.f("pk_alert_receivers")),
        sa.CheckConstraint("kind in ('webhook', 'bot')", name=op.f("ck_alert_receivers_kind")),
    )
    create_tenant_table(
        "alert_outbox",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("receiver", sa.Text, nullable=False),
        sa.Column("target_key", sa.Text, nullable=False),
        sa.Column("rule_name", sa.Text, nullable=False),
        sa.Column("transition", sa.Text, nullable=False),
        sa.Column("message", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="queued"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("slack_ts", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_alert_outbox")),
        sa.CheckConstraint(
            "status in ('queued', 'sent', 'failed')", name=op.f("ck_alert_outbox_status")
        ),
    )
    op.create_index(
        "ix_alert_outbox_due",
        "alert_outbox",
        ["tenant_id", "status", "not_before"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("alert_outbox", schema=SCHEMA)
    op.drop_table("alert_receivers", schema=SCHEMA)

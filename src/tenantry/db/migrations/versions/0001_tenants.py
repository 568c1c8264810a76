"""The tenant registry and the first tenant-owned table, tenant_settings.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.migrate import app_role
from tenantry.db.rls import rls_statements

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "tenantry"


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("tier", sa.Text, nullable=False, server_default="free"),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(r"id ~ '^[a-z0-9][a-z0-9_-]{2,62}$'", name=op.f("ck_tenants_id_format")),
        sa.CheckConstraint(
            "length(display_name) between 1 and 200", name=op.f("ck_tenants_display_name")
        ),
        sa.CheckConstraint(
            "tier in ('free', 'standard', 'premium', 'enterprise')", name=op.f("ck_tenants_tier")
        ),
        sa.CheckConstraint(
            "status in ('provisioning', 'active', 'suspended', 'archived', 'deleted')",
            name=op.f("ck_tenants_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        schema=SCHEMA,
    )
    # The registry is global; the application registers tenants and changes their status, but
    # removing one is the lifecycle's job (erasure), not a plain DELETE.
    op.execute(f'REVOKE DELETE ON "{SCHEMA}".tenants FROM "{app_role()}"')

    op.create_table(
        "tenant_settings",
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value", JSONB, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "key", name=op.f("pk_tenant_settings")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            [f"{SCHEMA}.tenants.id"],
            ondelete="CASCADE",
            name=op.f("fk_tenant_settings_tenant_id_tenants"),
        ),
        sa.CheckConstraint(
            r"key ~ '^[A-Za-z0-9_.:-]{1,128}$'", name=op.f("ck_tenant_settings_key_format")
        ),
        schema=SCHEMA,
    )
    for statement in rls_statements("tenant_settings", SCHEMA):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("tenant_settings", schema=SCHEMA)
    op.drop_table("tenants", schema=SCHEMA)

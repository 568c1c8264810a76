"""Tenant keys, the audit log (entries, tree nodes, heads, checkpoints), the platform tenant.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantry.db.migrate import app_role
from tenantry.db.rls import create_tenant_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
NOW = sa.func.now()
AUDIT = ("audit_entries", "audit_nodes", "audit_checkpoints")


def upgrade() -> None:
    # The platform's own audit tree lives under a reserved tenant, behind the same policies.
    op.execute(
        f"INSERT INTO {SCHEMA}.tenants (id, display_name, tier, status) "
        "VALUES ('platform', 'Platform', 'enterprise', 'active') ON CONFLICT (id) DO NOTHING"
    )
    create_tenant_table(
        "tenant_keys",
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("algorithm", sa.Text, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary, nullable=True),
        sa.Column("kek_version", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "purpose", "version", name=op.f("pk_tenant_keys")),
        sa.CheckConstraint("purpose in ('kek', 'data')", name=op.f("ck_tenant_keys_purpose")),
    )
    create_tenant_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary, nullable=False),
        sa.Column("entry", sa.LargeBinary, nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id", "seq", name=op.f("pk_audit_entries")),
    )
    create_tenant_table(
        "audit_nodes",
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("idx", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "level", "idx", name=op.f("pk_audit_nodes")),
    )
    create_tenant_table(
        "audit_checkpoints",
        sa.Column("tree_size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.LargeBinary, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id", "tree_size", name=op.f("pk_audit_checkpoints")),
    )
    # Append-only: the application role may read and insert audit rows, never change them.
    for name in AUDIT:
        op.execute(f'REVOKE UPDATE, DELETE, TRUNCATE ON "{SCHEMA}"."{name}" FROM "{app_role()}"')


def downgrade() -> None:
    for name in (*reversed(AUDIT), "tenant_keys"):
        op.drop_table(name, schema=SCHEMA)
    op.execute(f"DELETE FROM {SCHEMA}.tenants WHERE id = 'platform'")

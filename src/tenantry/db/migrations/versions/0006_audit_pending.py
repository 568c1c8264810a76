"""The audit log's queue: entries written with their change, integrated into the tree after.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantry.db.migrate import app_role
from tenantry.db.rls import create_tenant_table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"


def upgrade() -> None:
    create_tenant_table(
        "audit_pending",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary, nullable=False),
        sa.Column("entry", sa.LargeBinary, nullable=False),
        sa.Column(
            "queued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_audit_pending")),
    )
    # Queued entries are written and taken (deleted into the tree), never changed in place.
    op.execute(f'REVOKE UPDATE, TRUNCATE ON "{SCHEMA}"."audit_pending" FROM "{app_role()}"')


def downgrade() -> None:
    op.drop_table("audit_pending", schema=SCHEMA)

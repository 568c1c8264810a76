"""A covering index for the threat analysis: the window's events without touching the table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        'CREATE INDEX ix_security_events_window ON "tenantry"."security_events" '
        "(tenant_id, occurred_at) INCLUDE (kind, principal_id, ip, severity)"
    )


def downgrade() -> None:
    op.execute('DROP INDEX "tenantry"."ix_security_events_window"')

"""A session's ceiling: the actions of the credential that minted it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"


def upgrade() -> None:
    # NULL: no ceiling (minted by the platform's service token or a library call).
    op.add_column(
        "sessions", sa.Column("cap", postgresql.ARRAY(sa.Text), nullable=True), schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_column("sessions", "cap", schema=SCHEMA)

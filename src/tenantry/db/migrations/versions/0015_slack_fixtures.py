"""Each tenant's Slack alert templates, the documents' "fixtures", and its translation memory
(tenantry.alerts).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.rls import create_tenant_table

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
NOW = sa.func.now()


def upgrade() -> None:
    create_tenant_table(
        "slack_fixtures",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("default_locale", sa.Text, nullable=False),
        sa.Column("sensitive", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("locales", JSONB, nullable=True),
        sa.Column("sealed", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_slack_fixtures")),
        sa.CheckConstraint(
            "(sensitive AND sealed IS NOT NULL AND locales IS NULL) OR "
            "(NOT sensitive AND sealed IS NULL AND locales IS NOT NULL)",
            name=op.f("ck_slack_fixtures_sealed_if_sensitive"),
        ),
    )
    create_tenant_table(
        "translation_memory",
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("source_language", sa.Text, nullable=False),
        sa.Column("target_locale", sa.Text, nullable=False),
        sa.Column("source_digest", sa.LargeBinary, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "kind",
            "source_language",
            "target_locale",
            "source_digest",
            name=op.f("pk_translation_memory"),
        ),
        sa.CheckConstraint("kind in ('memory', 'term')", name=op.f("ck_translation_memory_kind")),
    )


def downgrade() -> None:
    op.drop_table("translation_memory", schema=SCHEMA)
    op.drop_table("slack_fixtures", schema=SCHEMA)

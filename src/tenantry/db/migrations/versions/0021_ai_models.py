"""The AI model registry: each tenant's models, their immutable versions (the model file in the
database, its digest, training metrics and data lineage) and their aliases (tenantry.ai).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.rls import create_tenant_table

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
NOW = sa.func.now()


def upgrade() -> None:
    create_tenant_table(
        "ai_models",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("model_type", sa.Text, nullable=False),
        sa.Column("latest_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id", "name", name=op.f("pk_ai_models")),
    )
    create_tenant_table(
        "ai_model_versions",
        sa.Column("model_name", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("file_format", sa.Text, nullable=False),
        sa.Column("file", sa.LargeBinary, nullable=False),
        sa.Column("sha256", sa.LargeBinary, nullable=False),
        sa.Column("metrics", JSONB, nullable=False),
        sa.Column("parameters", JSONB, nullable=False),
        sa.Column("lineage", JSONB, nullable=False),
        sa.Column("trained_by", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint(
            "tenant_id", "model_name", "version", name=op.f("pk_ai_model_versions")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "model_name"],
            [f"{SCHEMA}.ai_models.tenant_id", f"{SCHEMA}.ai_models.name"],
            ondelete="CASCADE",
            name=op.f("fk_ai_model_versions_tenant_id_ai_models"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_ai_model_versions_positive")),
    )
    create_tenant_table(
        "ai_model_aliases",
        sa.Column("model_name", sa.Text, nullable=False),
        sa.Column("alias", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint(
            "tenant_id", "model_name", "alias", name=op.f("pk_ai_model_aliases")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "model_name", "version"],
            [
                f"{SCHEMA}.ai_model_versions.tenant_id",
                f"{SCHEMA}.ai_model_versions.model_name",
                f"{SCHEMA}.ai_model_versions.version",
            ],
            ondelete="CASCADE",
            name=op.f("fk_ai_model_aliases_tenant_id_ai_model_versions"),
        ),
        sa.CheckConstraint(
            "alias in ('champion', 'challenger')", name=op.f("ck_ai_model_aliases_alias")
        ),
    )


def downgrade() -> None:
    op.drop_table("ai_model_aliases", schema=SCHEMA)
    op.drop_table("ai_model_versions", schema=SCHEMA)
    op.drop_table("ai_models", schema=SCHEMA)

"""The behaviour model's training sets and models, per tenant; sessions taken once.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from tenantry.db.rls import create_tenant_table

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
NOW = sa.func.now()


def upgrade() -> None:
    # When the learner took the session (learned from it or passed it over); NULL: not yet.
    op.add_column(
        "sessions",
        sa.Column("behaviour_seen_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_sessions_behaviour_pending",
        "sessions",
        ["tenant_id", "created_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("behaviour_seen_at IS NULL"),
    )
    op.create_index(
        "ix_session_activity_session",
        "session_activity",
        ["tenant_id", "session_id", "occurred_at"],
        schema=SCHEMA,
    )
    create_tenant_table(
        "behaviour_samples",
        sa.Column("session_id", sa.Text, nullable=False),
        sa.Column("sample_id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("features", ARRAY(sa.Float), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id", "session_id", name=op.f("pk_behaviour_samples")),
        sa.CheckConstraint(
            "cardinality(features) between 1 and 256", name=op.f("ck_behaviour_samples_features")
        ),
    )
    op.create_index(
        "ix_behaviour_samples_order",
        "behaviour_samples",
        ["tenant_id", "sample_id"],
        schema=SCHEMA,
    )
    create_tenant_table(
        "behaviour_models",
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("format", sa.SmallInteger, nullable=False),
        sa.Column("meta", JSONB, nullable=False),
        sa.Column("arrays", sa.LargeBinary, nullable=False),
        sa.Column("through", sa.BigInteger, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_behaviour_models")),
        sa.CheckConstraint("version > 0", name=op.f("ck_behaviour_models_version")),
    )


def downgrade() -> None:
    op.drop_table("behaviour_models", schema=SCHEMA)
    op.drop_table("behaviour_samples", schema=SCHEMA)
    op.drop_index("ix_session_activity_session", "session_activity", schema=SCHEMA)
    op.drop_index("ix_sessions_behaviour_pending", "sessions", schema=SCHEMA)
    op.drop_column("sessions", "behaviour_seen_at", schema=SCHEMA)

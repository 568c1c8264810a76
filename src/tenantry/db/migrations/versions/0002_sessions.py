"""Sessions, API keys, passkeys, role assignments, session activity and security events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from tenantry.db.rls import create_tenant_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
NOW = sa.func.now()


def _ts(name: str, nullable: bool = False, default: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        name, sa.DateTime(timezone=True), nullable=nullable, server_default=NOW if default else None
    )


def upgrade() -> None:
    create_tenant_table(
        "sessions",
        sa.Column("session_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("session_type", sa.Text, nullable=False),
        sa.Column("security_level", sa.Text, nullable=False),
        sa.Column("token_hash", sa.LargeBinary, nullable=False),
        _ts("created_at", default=True),
        _ts("last_seen_at", default=True),
        _ts("idle_expires_at"),
        _ts("absolute_expires_at"),
        _ts("revoked_at", nullable=True),
        sa.Column("revoke_reason", sa.Text, nullable=True),
        sa.Column("ip", sa.Text, nullable=True),
        sa.Column("user_agent", sa.Text, nullable=True),
        sa.Column("device_id", sa.Text, nullable=True),
        _ts("step_up_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "session_id", name=op.f("pk_sessions")),
        sa.UniqueConstraint(
            "tenant_id", "token_hash", name=op.f("uq_sessions_tenant_id_token_hash")
        ),
        sa.CheckConstraint(
            "session_type in ('user', 'api', 'admin')", name=op.f("ck_sessions_type")
        ),
        sa.CheckConstraint(
            "security_level in ('high', 'critical', 'quantum')", name=op.f("ck_sessions_level")
        ),
    )
    op.create_index(
        op.f("ix_sessions_tenant_id_user_id"),
        "sessions",
        ["tenant_id", "user_id", "created_at"],
        schema=SCHEMA,
    )

    create_tenant_table(
        "api_keys",
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("service_account", sa.Text, nullable=False),
        sa.Column("scopes", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("key_hash", sa.LargeBinary, nullable=False),
        _ts("created_at", default=True),
        _ts("expires_at", nullable=True),
        _ts("revoked_at", nullable=True),
        _ts("last_used_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "key_id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("tenant_id", "key_hash", name=op.f("uq_api_keys_tenant_id_key_hash")),
    )

    create_tenant_table(
        "passkey_credentials",
        sa.Column("credential_id", sa.LargeBinary, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("sign_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("transports", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("aaguid", sa.Text, nullable=True),
        _ts("created_at", default=True),
        _ts("last_used_at", nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "credential_id", name=op.f("pk_passkey_credentials")),
    )
    op.create_index(
        op.f("ix_passkey_credentials_tenant_id_user_id"),
        "passkey_credentials",
        ["tenant_id", "user_id"],
        schema=SCHEMA,
    )

    create_tenant_table(
        "webauthn_challenges",
        sa.Column("challenge_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("challenge", sa.LargeBinary, nullable=False),
        sa.Column("session_id", sa.Text, nullable=True),
        _ts("expires_at"),
        sa.PrimaryKeyConstraint("tenant_id", "challenge_id", name=op.f("pk_webauthn_challenges")),
        sa.CheckConstraint(
            "purpose in ('register', 'authenticate')", name=op.f("ck_webauthn_challenges_purpose")
        ),
    )

    create_tenant_table(
        "role_assignments",
        sa.Column("principal_id", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        _ts("granted_at", default=True),
        sa.PrimaryKeyConstraint(
            "tenant_id", "principal_id", "role", name=op.f("pk_role_assignments")
        ),
        sa.CheckConstraint(
            "role in ('viewer', 'editor', 'admin', 'service')",
            name=op.f("ck_role_assignments_role"),
        ),
    )

    create_tenant_table(
        "session_activity",
        sa.Column("activity_id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("session_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        _ts("occurred_at", default=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("ip", sa.Text, nullable=True),
        sa.Column("user_agent", sa.Text, nullable=True),
        sa.Column("device_id", sa.Text, nullable=True),
        sa.Column("requests", sa.Integer, nullable=False, server_default="1"),
        sa.PrimaryKeyConstraint("tenant_id", "activity_id", name=op.f("pk_session_activity")),
    )
    op.create_index(
        op.f("ix_session_activity_tenant_id_user_id"),
        "session_activity",
        ["tenant_id", "user_id", "occurred_at"],
        schema=SCHEMA,
    )

    create_tenant_table(
        "security_events",
        sa.Column("event_id", sa.BigInteger, sa.Identity(), nullable=False),
        _ts("occurred_at", default=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False, server_default="low"),
        sa.Column("principal_id", sa.Text, nullable=True),
        sa.Column("session_id", sa.Text, nullable=True),
        sa.Column("ip", sa.Text, nullable=True),
        sa.Column("detail", JSONB, nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("tenant_id", "event_id", name=op.f("pk_security_events")),
        sa.CheckConstraint(
            "severity in ('low', 'medium', 'high', 'critical')",
            name=op.f("ck_security_events_severity"),
        ),
    )
    op.create_index(
        op.f("ix_security_events_tenant_id_occurred_at"),
        "security_events",
        ["tenant_id", "occurred_at"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    for name in (
        "security_events",
        "session_activity",
        "role_assignments",
        "webauthn_challenges",
        "passkey_credentials",
        "api_keys",
        "sessions",
    ):
        op.drop_table(name, schema=SCHEMA)

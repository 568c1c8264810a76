"""Tables of the sessions domain (created by migration 0002; the behaviour samples by 0008).

The behaviour models live in each tenant's AI registry (``tenantry.ai.models``) since migration
0023, which moved them there from ``behaviour_models`` and dropped that table."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from tenantry.db.columns import timestamp
from tenantry.db.rls import tenant_table

__all__ = [
    "api_keys",
    "behaviour_samples",
    "session_activity",
    "sessions",
]


sessions = tenant_table(
    "sessions",
    Column("session_id", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("session_type", Text, nullable=False),
    Column("security_level", Text, nullable=False),
    Column("token_hash", LargeBinary, nullable=False),
    timestamp("created_at", default=True),
    timestamp("last_seen_at", default=True),
    timestamp("idle_expires_at"),
    timestamp("absolute_expires_at"),
    timestamp("revoked_at", nullable=True),
    Column("revoke_reason", Text, nullable=True),
    Column("ip", Text, nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("device_id", Text, nullable=True),
    timestamp("step_up_at", nullable=True),
    # The actions of the credential that minted the session (0007); NULL: no ceiling.
    Column("cap", ARRAY(Text), nullable=True),
    # When the behaviour learner took the session, once (0008); NULL: not yet.
    timestamp("behaviour_seen_at", nullable=True),
    UniqueConstraint("tenant_id", "token_hash"),
    CheckConstraint("session_type in ('user', 'api', 'admin')", name="type"),
    CheckConstraint("security_level in ('high', 'critical', 'quantum')", name="level"),
    Index(None, "tenant_id", "user_id", "created_at"),
    Index(
        "ix_sessions_behaviour_pending",
        "tenant_id",
        "created_at",
        postgresql_where=text("behaviour_seen_at IS NULL"),
    ),
    info={"sample_row": {"session_type": "user", "security_level": "high"}},
)

api_keys = tenant_table(
    "api_keys",
    Column("key_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("service_account", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False, server_default="{}"),
    Column("key_hash", LargeBinary, nullable=False),
    timestamp("created_at", default=True),
    timestamp("expires_at", nullable=True),
    timestamp("revoked_at", nullable=True),
    timestamp("last_used_at", nullable=True),
    UniqueConstraint("tenant_id", "key_hash"),
)

session_activity = tenant_table(
    "session_activity",
    Column("activity_id", BigInteger, Identity(), primary_key=True),
    Column("session_id", Text, nullable=False),
    Column("user_id", Text, nullable=False),
    timestamp("occurred_at", default=True),
    Column("kind", Text, nullable=False),
    Column("ip", Text, nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("device_id", Text, nullable=True),
    Column("requests", Integer, nullable=False, server_default="1"),
    Index(None, "tenant_id", "user_id", "occurred_at"),
    Index("ix_session_activity_session", "tenant_id", "session_id", "occurred_at"),  # 0008
)

#: One row per session the behaviour learner learned from: the tenant's training set, the
#: newest ``max_samples`` kept (``sample_id`` orders them).
behaviour_samples = tenant_table(
    "behaviour_samples",
    Column("session_id", Text, primary_key=True),
    Column("sample_id", BigInteger, Identity(), nullable=False),
    Column("features", ARRAY(Float), nullable=False),
    Column("score", Float, nullable=False),
    timestamp("learned_at", default=True),
    CheckConstraint("cardinality(features) between 1 and 256", name="features"),
    Index("ix_behaviour_samples_order", "tenant_id", "sample_id"),
    info={"sample_row": {"features": [0.5]}},
)

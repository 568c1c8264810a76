"""Tables of the sessions domain (created by migration 0002)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY

from tenantry.db.rls import tenant_table

__all__ = [
    "api_keys",
    "session_activity",
    "sessions",
]


def _ts(name: str, *, nullable: bool = False, default: bool = False) -> Column[object]:
    return Column(
        name,
        DateTime(timezone=True),
        nullable=nullable,
        server_default=func.now() if default else None,
    )


sessions = tenant_table(
    "sessions",
    Column("session_id", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("session_type", Text, nullable=False),
    Column("security_level", Text, nullable=False),
    Column("token_hash", LargeBinary, nullable=False),
    _ts("created_at", default=True),
    _ts("last_seen_at", default=True),
    _ts("idle_expires_at"),
    _ts("absolute_expires_at"),
    _ts("revoked_at", nullable=True),
    Column("revoke_reason", Text, nullable=True),
    Column("ip", Text, nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("device_id", Text, nullable=True),
    _ts("step_up_at", nullable=True),
    UniqueConstraint("tenant_id", "token_hash"),
    CheckConstraint("session_type in ('user', 'api', 'admin')", name="type"),
    CheckConstraint("security_level in ('high', 'critical', 'quantum')", name="level"),
    Index(None, "tenant_id", "user_id", "created_at"),
    info={"sample_row": {"session_type": "user", "security_level": "high"}},
)

api_keys = tenant_table(
    "api_keys",
    Column("key_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("service_account", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False, server_default="{}"),
    Column("key_hash", LargeBinary, nullable=False),
    _ts("created_at", default=True),
    _ts("expires_at", nullable=True),
    _ts("revoked_at", nullable=True),
    _ts("last_used_at", nullable=True),
    UniqueConstraint("tenant_id", "key_hash"),
)

session_activity = tenant_table(
    "session_activity",
    Column("activity_id", BigInteger, Identity(), primary_key=True),
    Column("session_id", Text, nullable=False),
    Column("user_id", Text, nullable=False),
    _ts("occurred_at", default=True),
    Column("kind", Text, nullable=False),
    Column("ip", Text, nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("device_id", Text, nullable=True),
    Column("requests", Integer, nullable=False, server_default="1"),
    Index(None, "tenant_id", "user_id", "occurred_at"),
)

"""Tables of the passkeys domain (created by migration 0002)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    LargeBinary,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from tenantry.db.columns import timestamp
from tenantry.db.rls import tenant_table

__all__ = ["passkey_credentials", "webauthn_challenges"]


passkey_credentials = tenant_table(
    "passkey_credentials",
    Column("credential_id", LargeBinary, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("sign_count", BigInteger, nullable=False, server_default="0"),
    Column("transports", ARRAY(Text), nullable=False, server_default="{}"),
    Column("aaguid", Text, nullable=True),
    timestamp("created_at", default=True),
    timestamp("last_used_at", nullable=True),
    Index(None, "tenant_id", "user_id"),
)

webauthn_challenges = tenant_table(
    "webauthn_challenges",
    Column("challenge_id", Text, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("challenge", LargeBinary, nullable=False),
    Column("session_id", Text, nullable=True),
    timestamp("expires_at"),
    CheckConstraint("purpose in ('register', 'authenticate')", name="purpose"),
    info={"sample_row": {"purpose": "register"}},
)

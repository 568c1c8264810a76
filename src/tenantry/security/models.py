"""Tables of the security domain (migrations 0002 and 0003)."""

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
    SmallInteger,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.rls import tenant_table

__all__ = [
    "PLATFORM_TENANT",
    "audit_checkpoints",
    "audit_entries",
    "audit_nodes",
    "audit_pending",
    "security_events",
    "tenant_keys",
]

#: The reserved tenant whose audit tree holds the platform's own events (created by 0003).
PLATFORM_TENANT = "platform"

security_events = tenant_table(
    "security_events",
    Column("event_id", BigInteger, Identity(), primary_key=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("kind", Text, nullable=False),
    Column("severity", Text, nullable=False, server_default="low"),
    Column("principal_id", Text, nullable=True),
    Column("session_id", Text, nullable=True),
    Column("ip", Text, nullable=True),
    Column("detail", JSONB, nullable=False, server_default="{}"),
    CheckConstraint("severity in ('low', 'medium', 'high', 'critical')", name="severity"),
    Index(None, "tenant_id", "occurred_at"),
    # 0004: covering index for the threat analysis's window scans.
    Index(
        "ix_security_events_window",
        "tenant_id",
        "occurred_at",
        postgresql_include=["kind", "principal_id", "ip", "severity"],
    ),
)

#: Key-encryption keys (purpose ``kek``, wrapped by the root key) and data keys (purpose
#: ``data``, wrapped by the KEK of ``kek_version``), versioned. Destroying a tenant's keys sets
#: ``wrapped_key`` to NULL and ``destroyed_at``: crypto-shredding.
tenant_keys = tenant_table(
    "tenant_keys",
    Column("purpose", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("algorithm", Text, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=True),
    Column("kek_version", Integer, nullable=True),
    # The root key version wrapping a KEK (migration 0005); NULL on data keys.
    Column("root_key_version", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("retired_at", DateTime(timezone=True), nullable=True),
    Column("destroyed_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("purpose in ('kek', 'data')", name="purpose"),
    info={"sample_row": {"purpose": "data"}},
)

#: One Merkle tree per tenant (RFC 9162): leaf ``seq`` has ``leaf_hash``; ``entry`` holds the
#: canonical entry, encrypted with the tenant's data key (shredded tenants keep only hashes).
#: Append-only: the application role has no UPDATE or DELETE on the audit tables.
audit_entries = tenant_table(
    "audit_entries",
    Column("seq", BigInteger, primary_key=True),
    Column("leaf_hash", LargeBinary, nullable=False),
    Column("entry", LargeBinary, nullable=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

#: The queue of entries written in the transaction of the change they record, integrated into
#: the tree afterwards (``audit_outbox``); ``entry`` is sealed to ``audit_pending/<id>``.
audit_pending = tenant_table(
    "audit_pending",
    Column("id", Text, primary_key=True),
    Column("leaf_hash", LargeBinary, nullable=False),
    Column("entry", LargeBinary, nullable=False),
    Column("queued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

#: Hashes of complete subtrees (``level`` 0 = leaves): node ``idx`` at ``level`` covers leaves
#: ``[idx * 2**level, (idx + 1) * 2**level)``. Proofs read O(log n) of them.
audit_nodes = tenant_table(
    "audit_nodes",
    Column("level", SmallInteger, primary_key=True),
    Column("idx", BigInteger, primary_key=True),
    Column("hash", LargeBinary, nullable=False),
)

#: Signed checkpoints (C2SP signed notes) of each tenant's tree.
audit_checkpoints = tenant_table(
    "audit_checkpoints",
    Column("tree_size", BigInteger, primary_key=True),
    Column("root_hash", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

"""Tables of the audit log (migrations 0003 and 0006)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    LargeBinary,
    SmallInteger,
    Text,
    func,
)

from tenantry.db.rls import tenant_table

__all__ = ["audit_checkpoints", "audit_entries", "audit_nodes", "audit_pending"]

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
#: the tree afterwards (``outbox.py``); ``entry`` is sealed to ``audit_pending/<id>``.
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

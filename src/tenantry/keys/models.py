"""The tenant keys table (migrations 0003 and 0005)."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    Text,
    func,
)

from tenantry.db.rls import tenant_table

__all__ = ["tenant_keys"]

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
    # An export leaves the key material out: a copy of it would outlive crypto-shredding.
    info={"sample_row": {"purpose": "data"}, "export_redacted": ("wrapped_key",)},
)

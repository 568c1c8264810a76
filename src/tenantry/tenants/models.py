"""Tables of the tenants domain (created by migration 0001)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.metadata import metadata
from tenantry.db.rls import tenant_table

__all__ = ["tenant_settings", "tenants"]

#: The one global table: every tenant-owned row hangs on a row here.
tenants = Table(
    "tenants",
    metadata,
    Column("id", Text, primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("tier", Text, nullable=False, server_default="free"),
    Column("status", Text, nullable=False, server_default="active"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

#: Key/value settings per tenant: the first tenant-owned table, proving the boundary end to end.
tenant_settings = tenant_table(
    "tenant_settings",
    Column("key", Text, primary_key=True),
    Column("value", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(r"key ~ '^[A-Za-z0-9_.:-]{1,128}$'", name="key_format"),
)

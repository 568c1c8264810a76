"""Tables of the access domain (created by migration 0002)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, Text, func

from tenantry.db.rls import tenant_table

__all__ = ["ROLES", "role_assignments"]

ROLES = ("viewer", "editor", "admin", "service")

role_assignments = tenant_table(
    "role_assignments",
    Column("principal_id", Text, primary_key=True),
    Column("role", Text, primary_key=True),
    Column("granted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("role in ('viewer', 'editor', 'admin', 'service')", name="role"),
    info={"sample_row": {"role": "viewer"}},
)

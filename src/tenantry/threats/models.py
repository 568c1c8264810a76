"""The security events table (migrations 0002 and 0004)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.rls import tenant_table

__all__ = ["security_events"]

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

"""Alert tables (created by migration 0014): each tenant's rules, and where each rule's alert
stands (durable, so a restart neither forgets a pending ``for`` nor fires twice)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, DateTime, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.rls import tenant_table

__all__ = ["STATUSES", "alert_rules", "alert_states"]

STATUSES = ("inactive", "pending", "firing", "resolved")
_STATUSES = ", ".join(f"'{s}'" for s in STATUSES)

alert_rules = tenant_table(
    "alert_rules",
    Column("name", Text, primary_key=True),
    #: The rule as the tenant wrote it (name, condition, severity, for, labels, annotations).
    Column("definition", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    info={"sample_row": {"definition": {"name": "r", "condition": "x > 1", "severity": "info"}}},
)

alert_states = tenant_table(
    "alert_states",
    Column("rule_name", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("active_since", DateTime(timezone=True), nullable=True),
    Column("fired_at", DateTime(timezone=True), nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("evaluated_at", DateTime(timezone=True), nullable=True),
    #: The series the condition read at the last evaluation, and their values.
    Column("observed", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    CheckConstraint(f"status in ({_STATUSES})", name="status"),
    info={"sample_row": {"status": "inactive", "observed": {}}},
)

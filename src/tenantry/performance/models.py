"""The table of knob changes (created by migration 0022).

Every change an optimization round made, under the platform tenant (the knobs are the
process's): which knob, from what to what, why (the bottleneck's evidence), the strategy, the
measurement before and after, and whether it was kept or rolled back.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Float, Index, Text, Uuid

from tenantry.db.columns import timestamp
from tenantry.db.rls import tenant_table

__all__ = ["performance_changes"]

performance_changes = tenant_table(
    "performance_changes",
    Column("id", Uuid, primary_key=True),
    Column("round_id", Uuid, nullable=False),
    Column("knob", Text, nullable=False),
    Column("strategy", Text, nullable=False),
    Column("old_value", Float, nullable=False),
    Column("new_value", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("score_before", Float, nullable=False),
    Column("score_after", Float, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("actor", Text, nullable=False),
    timestamp("created_at", default=True),
    CheckConstraint("outcome in ('kept', 'rolled_back')", name="outcome"),
    Index("ix_performance_changes_created_at", "tenant_id", "created_at"),
    info={"sample_row": {"outcome": "kept"}},
)

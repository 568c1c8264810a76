"""The workflows' tables (migration 0024): each tenant's sagas and the history of their steps.

A ``workflows`` row is a saga: its definition's name, its input, its strategy, where it stands
(``status``, the next forward step ``position``, the next step to compensate
``compensate_from``), when it may run next (``next_run_at``) and which worker holds it
(``lease_owner`` until ``lease_expires_at``). A ``workflow_steps`` row is one step of one phase
(``forward`` or ``compensation``): its state, how many attempts it took, its output and the
errors of its failed attempts. Both are tenant data under row-level security.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.rls import tenant_table

__all__ = ["FINISHED", "RUNNABLE", "STATUSES", "workflow_steps", "workflows"]

#: Where a saga can stand. The first three are picked up by workers; the others wait for an
#: operator (``parked``) or are final.
RUNNABLE: Final = ("pending", "running", "compensating")
FINISHED: Final = ("completed", "compensated", "failed", "cancelled")
STATUSES: Final = (*RUNNABLE, "parked", *FINISHED)

workflows = tenant_table(
    "workflows",
    Column("id", Uuid, primary_key=True),
    Column("definition", Text, nullable=False),
    Column("input", JSONB, nullable=False),
    Column("compensation_strategy", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    #: the phase a parked saga stopped in: ``forward`` or ``compensation``
    Column("phase", Text, nullable=False, server_default="forward"),
    Column("position", Integer, nullable=False, server_default="0"),
    Column("compensate_from", Integer, nullable=False, server_default="-1"),
    Column("cancel_requested", Boolean, nullable=False, server_default="false"),
    Column("next_run_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("lease_owner", Text),
    Column("lease_expires_at", DateTime(timezone=True)),
    Column("reason", Text, nullable=False, server_default=""),
    Column("result", JSONB),
    Column("idempotency_key", Text),
    Column("created_by", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    UniqueConstraint("tenant_id", "idempotency_key"),
    CheckConstraint(f"status in ({', '.join(repr(s) for s in STATUSES)})", name="status"),
    CheckConstraint(
        "compensation_strategy in ('automatic', 'manual', 'none')", name="compensation_strategy"
    ),
    CheckConstraint("phase in ('forward', 'compensation')", name="phase"),
    info={
        "sample_row": {
            "definition": "release_track",
            "input": {},
            "compensation_strategy": "automatic",
        }
    },
)

workflow_steps = tenant_table(
    "workflow_steps",
    Column("workflow_id", Uuid, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("phase", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("output", JSONB),
    #: the errors of the failed attempts, the latest last (at most ten kept)
    Column("errors", JSONB, nullable=False, server_default="[]"),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    ForeignKeyConstraint(
        ["tenant_id", "workflow_id"], ["workflows.tenant_id", "workflows.id"], ondelete="CASCADE"
    ),
    CheckConstraint("phase in ('forward', 'compensation')", name="phase"),
    CheckConstraint("status in ('running', 'done', 'failed')", name="status"),
    info={"sample_row": {"position": 0, "phase": "forward", "name": "s", "status": "done"}},
)

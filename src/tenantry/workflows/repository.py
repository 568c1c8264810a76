"""The workflows' SQL: every statement runs in the caller's transaction, as its tenant (row-level
security), except :func:`claim` and :func:`renew`, which run outside any tenant's transaction
and visit the tenants through the functions of migration 0024.

A write that a worker makes on a saga names the worker (``lease_owner``): when another worker
has taken the saga over (the lease expired), the write changes nothing and :class:`LeaseLost`
is raised, so the transaction rolls back with whatever the step wrote in it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.errors import TenantryError

__all__ = [
    "MAX_KEPT_ERRORS",
    "LeaseLost",
    "StepView",
    "WorkflowRow",
    "claim",
    "renew",
]

#: The errors of failed attempts a step's history keeps (the latest).
MAX_KEPT_ERRORS: Final = 10

_COLUMNS: Final = (
    "id, definition, input, compensation_strategy, status, phase, position, compensate_from, "
    "cancel_requested, next_run_at, lease_owner, lease_expires_at, reason, result, "
    "idempotency_key, created_by, created_at, updated_at, finished_at"
)
_STEP_COLUMNS: Final = (
    "name, position, phase, status, attempts, output, errors, started_at, finished_at"
)


class LeaseLost(TenantryError):
    """Another worker holds the saga now (this worker's lease expired): stop working on it."""


@dataclass(frozen=True, slots=True)
class WorkflowRow:
    id: uuid.UUID
    definition: str
    input: dict[str, Any]
    compensation_strategy: str
    status: str
    phase: str
    position: int
    compensate_from: int
    cancel_requested: bool
    next_run_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    reason: str
    result: Any
    idempotency_key: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class StepView:
    """One step of one phase, as the history shows it (its row, as read)."""

    name: str
    position: int
    phase: str
    status: str
    attempts: int
    output: Any
    errors: list[str]
    started_at: datetime | None
    finished_at: datetime | None


async def insert(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    workflow_id: uuid.UUID,
    definition: str,
    input_json: str,
    strategy: str,
    idempotency_key: str | None,
    actor: str,
) -> uuid.UUID | None:
    """Insert a pending saga; None when ``idempotency_key`` names one already (nothing done)."""
    row = await conn.execute(
        text(
            "INSERT INTO tenantry.workflows (tenant_id, id, definition, input, "
            "compensation_strategy, idempotency_key, created_by) VALUES (:t, :id, :d, "
            "CAST(:input AS jsonb), :s, :k, :by) ON CONFLICT (tenant_id, idempotency_key) "
            "DO NOTHING RETURNING id"
        ),
        {
            "t": tenant_id,
            "id": workflow_id,
            "d": definition,
            "input": input_json,
            "s": strategy,
            "k": idempotency_key,
            "by": actor,
        },
    )
    return row.scalar_one_or_none()


async def by_key(conn: AsyncConnection, idempotency_key: str) -> WorkflowRow | None:
    row = await conn.execute(
        text(f"SELECT {_COLUMNS} FROM tenantry.workflows WHERE idempotency_key = :k"),
        {"k": idempotency_key},
    )
    found = row.one_or_none()
    return None if found is None else WorkflowRow(*found)


async def get(
    conn: AsyncConnection, workflow_id: uuid.UUID, *, lock: bool = False
) -> WorkflowRow | None:
    row = await conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM tenantry.workflows WHERE id = :id"
            + (" FOR UPDATE" if lock else "")
        ),
        {"id": workflow_id},
    )
    found = row.one_or_none()
    return None if found is None else WorkflowRow(*found)


async def listing(
    conn: AsyncConnection,
    *,
    statuses: Sequence[str],
    definition: str | None,
    before: datetime | None,
    limit: int,
) -> list[WorkflowRow]:
    clauses = ["status = ANY(:statuses)"]
    params: dict[str, Any] = {"statuses": list(statuses), "n": limit}
    if definition is not None:
        clauses.append("definition = :d")
        params["d"] = definition
    if before is not None:
        clauses.append("created_at < :before")
        params["before"] = before
    rows = await conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM tenantry.workflows WHERE {' AND '.join(clauses)} "
            "ORDER BY created_at DESC, id LIMIT :n"
        ),
        params,
    )
    return [WorkflowRow(*r) for r in rows]


async def counts(conn: AsyncConnection, statuses: Sequence[str]) -> dict[str, int]:
    """How many of the tenant's sagas stand in each of ``statuses`` (0 for none)."""
    rows = await conn.execute(
        text(
            "SELECT status, count(*) FROM tenantry.workflows WHERE status = ANY(:statuses) "
            "GROUP BY status"
        ),
        {"statuses": list(statuses)},
    )
    found = {str(status): int(n) for status, n in rows}
    return {status: found.get(status, 0) for status in statuses}


async def steps(conn: AsyncConnection, workflow_id: uuid.UUID) -> list[StepView]:
    rows = await conn.execute(
        text(
            f"SELECT {_STEP_COLUMNS} FROM tenantry.workflow_steps WHERE workflow_id = :id "
            "ORDER BY phase DESC, position"
        ),
        {"id": workflow_id},
    )
    return [StepView(*r) for r in rows]


async def open_count(conn: AsyncConnection) -> int:
    """The tenant's sagas that are not finished (pending, running, compensating, parked)."""
    found = await conn.scalar(
        text(
            "SELECT count(*) FROM tenantry.workflows WHERE status IN "
            "('pending', 'running', 'compensating', 'parked')"
        )
    )
    return int(found or 0)


async def update(
    conn: AsyncConnection,
    workflow_id: uuid.UUID,
    changes: Mapping[str, Any],
    *,
    owner: str | None = None,
) -> None:
    """Set ``changes`` on the saga (``result``: JSON text); as ``owner``'s when given
    (:class:`LeaseLost` if another worker holds it)."""
    sets = ["updated_at = clock_timestamp()"]
    params: dict[str, Any] = {"id": workflow_id}
    for column, value in changes.items():
        if column == "result":
            sets.append("result = CAST(:result AS jsonb)")
        elif column == "finished":
            sets.append("finished_at = clock_timestamp()")
            continue
        elif column == "next_run_in":
            sets.append("next_run_at = clock_timestamp() + make_interval(secs => :next_run_in)")
        else:
            sets.append(f"{column} = :{column}")
        params[column] = value
    where = "id = :id"
    if owner is not None:
        where += " AND lease_owner = :owner"
        params["owner"] = owner
    done = await conn.execute(
        text(f"UPDATE tenantry.workflows SET {', '.join(sets)} WHERE {where} RETURNING id"),
        params,
    )
    if owner is not None and done.scalar_one_or_none() is None:
        raise LeaseLost(f"workflow {workflow_id} is held by another worker now")


async def start_step(
    conn: AsyncConnection,
    workflow_id: uuid.UUID,
    *,
    position: int,
    phase: str,
    name: str,
    owner: str,
) -> int:
    """Count one more attempt of the step (as ``owner``); the attempt's number."""
    await update(conn, workflow_id, {}, owner=owner)
    attempts = await conn.scalar(
        text(
            "INSERT INTO tenantry.workflow_steps AS s (tenant_id, workflow_id, position, phase, "
            "name, status, attempts, started_at) VALUES ((select current_setting("
            "'tenantry.tenant_id', true)), :id, :p, :phase, :name, 'running', 1, "
            "clock_timestamp()) ON CONFLICT (tenant_id, workflow_id, position, phase) DO UPDATE "
            "SET status = 'running', attempts = s.attempts + 1, started_at = clock_timestamp(), "
            "finished_at = NULL RETURNING attempts"
        ),
        {"id": workflow_id, "p": position, "phase": phase, "name": name},
    )
    return int(attempts or 1)


async def finish_step(
    conn: AsyncConnection,
    workflow_id: uuid.UUID,
    position: int,
    phase: str,
    output_json: str,
) -> None:
    await conn.execute(
        text(
            "UPDATE tenantry.workflow_steps SET status = 'done', output = CAST(:o AS jsonb), "
            "finished_at = clock_timestamp() WHERE workflow_id = :id AND position = :p "
            "AND phase = :phase"
        ),
        {"id": workflow_id, "p": position, "phase": phase, "o": output_json},
    )


async def fail_step(
    conn: AsyncConnection, workflow_id: uuid.UUID, position: int, phase: str, error: str
) -> None:
    await conn.execute(
        text(
            "UPDATE tenantry.workflow_steps SET status = 'failed', finished_at = "
            "clock_timestamp(), errors = (SELECT coalesce(jsonb_agg(e ORDER BY n), '[]') FROM ("
            "SELECT e, n FROM jsonb_array_elements(errors || CAST(:e AS jsonb)) WITH ORDINALITY "
            f"AS x(e, n) ORDER BY n DESC LIMIT {MAX_KEPT_ERRORS}) kept) WHERE workflow_id = :id "
            "AND position = :p AND phase = :phase"
        ),
        {"id": workflow_id, "p": position, "phase": phase, "e": json.dumps([error])},
    )


async def reset_attempts(
    conn: AsyncConnection, workflow_id: uuid.UUID, position: int, phase: str, note: str
) -> None:
    """A resumed step starts its attempts again (its errors kept, with ``note``)."""
    await conn.execute(
        text(
            "UPDATE tenantry.workflow_steps SET attempts = 0, errors = errors || "
            "CAST(:e AS jsonb) WHERE workflow_id = :id AND position = :p AND phase = :phase"
        ),
        {"id": workflow_id, "p": position, "phase": phase, "e": json.dumps([note])},
    )


async def outputs(conn: AsyncConnection, workflow_id: uuid.UUID) -> dict[int, Any]:
    """The outputs of the saga's completed forward steps, by position."""
    rows = await conn.execute(
        text(
            "SELECT position, output FROM tenantry.workflow_steps WHERE workflow_id = :id "
            "AND phase = 'forward' AND status = 'done'"
        ),
        {"id": workflow_id},
    )
    return {int(position): output for position, output in rows}


# -- across tenants: the workers' claims and heartbeats ------------------------------------------


async def claim(
    conn: AsyncConnection,
    worker: str,
    *,
    limit: int,
    lease: float,
    caps: Mapping[str, int],
    default_cap: int,
    only: Sequence[str] | None = None,
    definitions: Sequence[str] | None = None,
) -> list[tuple[str, uuid.UUID]]:
    """Lease up to ``limit`` due sagas to ``worker`` for ``lease`` seconds, in fair order under
    each tier's concurrency cap (``caps``, else ``default_cap``), of the tenants ``only`` and
    the definitions ``definitions`` if given: (tenant, saga) pairs."""
    rows = await conn.execute(
        text(
            "SELECT tenant_id, workflow_id FROM "
            "tenantry.claim_workflows(:w, :n, :l, :c, :d, :only, :defs)"
        ),
        {
            "w": worker,
            "n": limit,
            "l": lease,
            "c": json.dumps(dict(caps)),
            "d": default_cap,
            "only": None if only is None else list(only),
            "defs": None if definitions is None else list(definitions),
        },
    )
    return [(str(t), w) for t, w in rows]


async def renew(
    conn: AsyncConnection, worker: str, held: Sequence[tuple[str, uuid.UUID]], lease: float
) -> dict[tuple[str, uuid.UUID], bool]:
    """Extend ``worker``'s leases of ``held`` by ``lease`` seconds: those it still holds, each
    with whether it was asked to cancel."""
    if not held:
        return {}
    rows = await conn.execute(
        text(
            "SELECT tenant_id, workflow_id, cancel_requested FROM "
            "tenantry.renew_workflow_leases(:w, :ts, :ids, :l)"
        ),
        {"w": worker, "ts": [t for t, _ in held], "ids": [w for _, w in held], "l": lease},
    )
    return {(str(t), w): bool(c) for t, w, c in rows}

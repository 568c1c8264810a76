"""WorkflowManager: start a tenant's sagas, read them with their history, cancel, resume and
compensate them (the documents' ``create_workflow``).

``create_workflow(tenant_id, workflow_definition, input, compensation_strategy=...)`` stores a
pending saga in the tenant's tables and wakes the process's worker; any worker runs it
(:mod:`tenantry.workflows.worker`). ``workflow_definition`` is a
:class:`~tenantry.workflows.definitions.WorkflowDefinition` (registered in the manager's
registry on the way) or the name of a registered one. An ``idempotency_key`` makes a repeated
call return the first saga instead of starting another. A tenant that is not active starts
none (:class:`~tenantry.errors.TenantNotActive`), and a tenant has at most
:data:`MAX_OPEN_WORKFLOWS` sagas not finished at once.

Operators' calls: ``cancel`` (a pending saga ends at once; a running one is compensated by its
strategy after its current step), ``resume`` (a parked saga tries its failed step, or its failed
compensation, again with fresh attempts) and ``compensate`` (a saga parked in its forward phase
compensates its completed steps). Each is audited.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import text

from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import Conflict, InvalidInput, NotFound, TenantNotActive, TenantNotFound
from tenantry.workflows import repository as repo
from tenantry.workflows.definitions import (
    CompensationStrategy,
    WorkflowDefinition,
    WorkflowRegistry,
    check_json,
    default_registry,
)
from tenantry.workflows.models import FINISHED, RUNNABLE, STATUSES
from tenantry.workflows.repository import StepView, WorkflowRow

__all__ = [
    "MAX_LIST",
    "MAX_OPEN_WORKFLOWS",
    "StepView",
    "WorkflowManager",
    "WorkflowView",
]

#: Sagas of one tenant not finished at once (pending, running, compensating, parked).
MAX_OPEN_WORKFLOWS: Final = 50_000
MAX_LIST: Final = 500
_KEY: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@dataclass(frozen=True, slots=True)
class WorkflowView:
    """A saga as reads show it; ``steps`` only when read alone (``get_workflow``)."""

    id: str
    definition: str
    status: str
    compensation_strategy: str
    input: dict[str, Any]
    position: int
    cancel_requested: bool
    reason: str
    result: Any
    created_by: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    next_run_at: datetime
    steps: list[StepView] | None = None


def _view(row: WorkflowRow, steps: Sequence[StepView] | None = None) -> WorkflowView:
    return WorkflowView(
        str(row.id), row.definition, row.status, row.compensation_strategy, row.input,
        row.position, row.cancel_requested, row.reason, row.result, row.created_by,
        row.created_at, row.updated_at, row.finished_at, row.next_run_at,
        None if steps is None else list(steps),
    )  # fmt: skip


def _uuid(workflow_id: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(workflow_id))
    except ValueError:
        raise NotFound(f"no workflow {InvalidInput.excerpt(workflow_id)}") from None


class WorkflowManager(RecordsChanges):
    """A tenant's durable sagas; see the module docstring."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        registry: WorkflowRegistry | None = None,
        audit: ChangeLog | None = None,
        on_created: Callable[[], None] | None = None,
    ) -> None:
        self._database, self._audit = database, audit
        self.registry = registry or default_registry()
        self._on_created = on_created

    def on_created(self, wake: Callable[[], None] | None) -> None:
        """Call ``wake`` after each saga is created (the process's worker claims it at once)."""
        self._on_created = wake

    async def create_workflow(
        self,
        tenant_id: str,
        workflow_definition: WorkflowDefinition | str,
        input_data: Mapping[str, Any] | None = None,
        *,
        compensation_strategy: CompensationStrategy | str = CompensationStrategy.AUTOMATIC,
        idempotency_key: str | None = None,
        actor: str | None = None,
    ) -> str:
        """Start a saga of ``workflow_definition`` with ``input_data``; its id (the first one's,
        when ``idempotency_key`` was used before)."""
        validate_tenant_id(tenant_id)
        if isinstance(workflow_definition, WorkflowDefinition):
            definition = self.registry.register(workflow_definition)
        else:
            definition = self.registry.get(workflow_definition)
        definition.check_owner(tenant_id)
        try:
            strategy = CompensationStrategy(compensation_strategy)
        except ValueError:
            raise InvalidInput("compensation_strategy is automatic, manual or none") from None
        if idempotency_key is not None and not (
            isinstance(idempotency_key, str) and _KEY.match(idempotency_key)
        ):
            raise InvalidInput("an idempotency key is 1 to 128 of A-Z a-z 0-9 _ . : -")
        input_json = check_json(definition.check_input(input_data or {}), "a workflow's input")
        workflow_id = uuid.uuid4()
        trail = await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                status = await conn.scalar(
                    text("SELECT status FROM tenantry.tenants WHERE id = :t"), {"t": tenant_id}
                )
                if status is None:
                    raise TenantNotFound(f"tenant {tenant_id!r} does not exist")
                if status != "active":
                    raise TenantNotActive(f"tenant {tenant_id!r} is {status}: no workflow starts")
                if (
                    idempotency_key is not None
                    and (known := await repo.by_key(conn, idempotency_key)) is not None
                ):
                    return str(known.id)
                if await repo.open_count(conn) >= MAX_OPEN_WORKFLOWS:
                    raise Conflict(
                        f"a tenant has at most {MAX_OPEN_WORKFLOWS:,} workflows not finished"
                    )
                made = await repo.insert(
                    conn,
                    tenant_id=tenant_id,
                    workflow_id=workflow_id,
                    definition=definition.name,
                    input_json=input_json,
                    strategy=strategy.value,
                    idempotency_key=idempotency_key,
                    actor=actor or "",
                )
                if made is None:  # the same key, committed meanwhile by another call
                    raise Conflict("a workflow with this idempotency key is being created")
                await trail.record(
                    tenant_id, "workflow.created", f"workflow:{workflow_id}", actor=actor,
                    detail={"definition": definition.name, "strategy": strategy.value},
                )  # fmt: skip
        if self._on_created is not None:
            self._on_created()
        return str(workflow_id)

    async def get_workflow(self, tenant_id: str, workflow_id: str) -> WorkflowView:
        """The saga with its steps' history; :class:`~tenantry.errors.NotFound` for none (or
        another tenant's)."""
        validate_tenant_id(tenant_id)
        key = _uuid(workflow_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                row = await repo.get(conn, key)
                if row is None:
                    raise NotFound(f"no workflow {workflow_id!r}")
                history = await repo.steps(conn, key)
        return _view(row, history)

    async def by_idempotency_key(self, tenant_id: str, key: str) -> WorkflowView | None:
        """The saga that ``create_workflow`` started with ``idempotency_key=key``, if any."""
        validate_tenant_id(tenant_id)
        if not (isinstance(key, str) and _KEY.match(key)):
            raise InvalidInput("an idempotency key is 1 to 128 of A-Z a-z 0-9 _ . : -")
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                row = await repo.by_key(conn, key)
        return None if row is None else _view(row)

    async def list_workflows(
        self,
        tenant_id: str,
        *,
        status: str | None = None,
        definition: str | None = None,
        before: datetime | None = None,
        limit: int = 100,
    ) -> list[WorkflowView]:
        """The tenant's sagas, the newest first (``before``: created before that time, for
        the next page), of ``status`` and ``definition`` when given."""
        validate_tenant_id(tenant_id)
        if status is not None and status not in STATUSES:
            raise InvalidInput(f"status is one of {', '.join(STATUSES)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit is from 1 to {MAX_LIST}")
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_read_transaction() as conn:
                rows = await repo.listing(
                    conn,
                    statuses=[status] if status else list(STATUSES),
                    definition=definition,
                    before=before,
                    limit=limit,
                )
        return [_view(r) for r in rows]

    async def counts(self, tenant_id: str, statuses: Sequence[str] = STATUSES) -> dict[str, int]:
        """How many of the tenant's sagas stand in each of ``statuses``: its queues (the
        dashboard's pending, running, compensating and parked)."""
        validate_tenant_id(tenant_id)
        unknown = [s for s in statuses if s not in STATUSES]
        if unknown:
            raise InvalidInput(f"status is one of {', '.join(STATUSES)}")
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_read_transaction() as conn:
                return await repo.counts(conn, statuses)

    async def cancel(
        self, tenant_id: str, workflow_id: str, *, actor: str | None = None
    ) -> WorkflowView:
        """Cancel the saga: a pending or parked one ends ``cancelled`` now; a running one is
        asked to (its strategy applies after its current step). A finished one is a
        :class:`~tenantry.errors.Conflict`."""

        def change(row: WorkflowRow) -> dict[str, Any]:
            if row.status in FINISHED:
                raise Conflict(f"workflow {row.id} is {row.status} already")
            if row.status in ("pending", "parked"):
                return {
                    "status": "cancelled",
                    "cancel_requested": True,
                    "finished": True,
                    "reason": "cancelled",
                    "lease_owner": None,
                    "lease_expires_at": None,
                }
            return {"cancel_requested": True}

        return await self._operate(tenant_id, workflow_id, "workflow.cancel", change, actor=actor)

    async def resume(
        self, tenant_id: str, workflow_id: str, *, actor: str | None = None
    ) -> WorkflowView:
        """A parked saga tries again what it stopped at (its step, or its compensation), with
        fresh attempts; :class:`~tenantry.errors.Conflict` for one that is not parked."""
        return await self._unpark(tenant_id, workflow_id, actor, compensate=False)

    async def compensate(
        self, tenant_id: str, workflow_id: str, *, actor: str | None = None
    ) -> WorkflowView:
        """A saga parked in its forward phase compensates its completed steps, last first."""
        return await self._unpark(tenant_id, workflow_id, actor, compensate=True)

    async def _unpark(
        self, tenant_id: str, workflow_id: str, actor: str | None, *, compensate: bool
    ) -> WorkflowView:
        resets: list[tuple[int, str]] = []

        def change(row: WorkflowRow) -> dict[str, Any]:
            if row.status != "parked":
                raise Conflict(f"workflow {row.id} is {row.status}, not parked")
            if compensate and row.phase == "compensation":
                raise Conflict(f"workflow {row.id} is compensating already: resume it")
            if compensate:
                return {"status": "compensating", "phase": "compensation",
                        "compensate_from": row.position - 1, "next_run_at_now": True}  # fmt: skip
            if row.phase == "compensation":
                resets.append((row.compensate_from, "compensation"))
                return {"status": "compensating", "next_run_at_now": True}
            resets.append((row.position, "forward"))
            return {"status": "running", "cancel_requested": False, "next_run_at_now": True}

        action = "workflow.compensate" if compensate else "workflow.resume"
        return await self._operate(
            tenant_id, workflow_id, action, change, actor=actor, resets=resets
        )

    async def _operate(
        self,
        tenant_id: str,
        workflow_id: str,
        action: str,
        change: Callable[[WorkflowRow], dict[str, Any]],
        *,
        actor: str | None,
        resets: list[tuple[int, str]] | None = None,
    ) -> WorkflowView:
        validate_tenant_id(tenant_id)
        key = _uuid(workflow_id)
        trail = await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                row = await repo.get(conn, key, lock=True)
                if row is None:
                    raise NotFound(f"no workflow {workflow_id!r}")
                changes = change(row)
                if changes.pop("next_run_at_now", False):
                    changes["next_run_in"] = 0.0
                await repo.update(conn, key, changes)
                for position, phase in resets or ():
                    await repo.reset_attempts(conn, key, position, phase, f"{action} by {actor}")
                await trail.record(
                    tenant_id, action, f"workflow:{key}", actor=actor,
                    detail={"definition": row.definition, "status": row.status},
                )  # fmt: skip
                row = await repo.get(conn, key)
                history = await repo.steps(conn, key)
        assert row is not None  # noqa: S101 - read in the same transaction
        if self._on_created is not None and row.status in RUNNABLE:
            self._on_created()
        return _view(row, history)

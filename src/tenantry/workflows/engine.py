"""WorkflowEngine: runs one leased saga, step by step, each result checkpointed before the next.

The engine runs a saga its worker holds (leased by :func:`~tenantry.workflows.repository.claim`)
until it finishes, waits for a retry, or is lost to another worker:

- **forward**: the step at ``position`` is attempted (a transactional step in the saga's
  tenant transaction; any other in a context of its own, outside the saga's tenant scope, so
  that a platform saga's step may act for another tenant) (the attempt counted first, in a
  transaction of its own); its output and ``position + 1`` are written in one transaction, which
  for a transactional step is the one the step wrote its effect in. A failed attempt with
  attempts left records the error and releases the saga until its backoff is over (another
  worker may take it then); the last failed attempt applies the strategy: ``automatic`` starts
  compensating, ``manual`` parks the saga, ``none`` ends it ``failed``.
- **compensation**: the completed steps that have a compensation are compensated from the last
  to the first, each with its own retries; then the saga is ``compensated`` (``cancelled`` when
  a cancellation started it). A compensation that fails for good parks the saga, with the
  reason, for an operator.
- **cancellation** is seen between steps: a running step is not interrupted (it ends, or times
  out); the strategy then decides as for a failure, and the saga ends ``cancelled``.

Every change of a saga's status is audited on the tenant's log in the transaction that makes it.
Any write of the engine names its worker: if the lease was lost, it changes nothing
(:class:`~tenantry.workflows.repository.LeaseLost`) and the engine stops.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tenantry.context import PLATFORM_TENANT, tenant_scope
from tenantry.db.changes import ChangeLog, change_log_for
from tenantry.db.engine import Database
from tenantry.errors import DatabaseError, InvalidInput, TenantryError
from tenantry.logging import get_logger
from tenantry.workflows import repository as repo
from tenantry.workflows.definitions import (
    Step,
    StepContext,
    StepFailed,
    WorkflowDefinition,
    WorkflowRegistry,
    check_json,
)
from tenantry.workflows.repository import LeaseLost, WorkflowRow

__all__ = ["UNKNOWN_DEFINITION_DELAY", "WorkflowEngine"]

#: How long a saga whose definition this worker does not know waits for another worker (s).
UNKNOWN_DEFINITION_DELAY: Final = 60.0
_MAX_ERROR: Final = 500
_log = get_logger("tenantry.workflows")


def describe(exc: BaseException, step: Step) -> str:
    """What a failed attempt leaves in the history: a step's own message (:class:`StepFailed`,
    a tenantry error), a timeout, or the exception's type alone (its text may hold anything; a
    database error's too, which may quote the server)."""
    if isinstance(exc, TimeoutError):
        return f"timed out after {step.timeout:g} s"
    if isinstance(exc, StepFailed):
        return str(exc)[:_MAX_ERROR]
    if isinstance(exc, DatabaseError):  # its detail may quote the server: its kind alone
        return f"{type(exc).__name__}: {exc.title}"
    if isinstance(exc, TenantryError):
        return f"{type(exc).__name__}: {exc.detail}"[:_MAX_ERROR]
    return type(exc).__name__


@dataclass(frozen=True, slots=True)
class _Outcome:
    done: bool
    attempt: int
    error: str = ""
    exhausted: bool = False


class WorkflowEngine:
    """Runs leased sagas for one worker (``owner``) with the definitions of ``registry``."""

    def __init__(
        self,
        database: Database,
        registry: WorkflowRegistry,
        owner: str,
        *,
        services: Mapping[str, Any] | None = None,
        audit: ChangeLog | None = None,
    ) -> None:
        self.database = database
        self.registry = registry
        self.owner = owner
        #: What steps find with ``ctx.service(name)``: ``database`` (the worker's), and what
        #: the worker was given (the service gives ``metadata`` and ``notifier``).
        self.services: Mapping[str, Any] = {"database": database, **(services or {})}
        self._audit = audit

    async def _trail(self, tenant_id: str) -> ChangeLog:
        if self._audit is None:
            self._audit = change_log_for(self.database)
        await self._audit.prepare(tenant_id)
        return self._audit

    async def run(self, tenant_id: str, workflow_id: uuid.UUID) -> None:
        """Run the saga until it finishes, waits, or is lost (see the module docstring)."""
        with tenant_scope(tenant_id):
            try:
                while await self._advance(tenant_id, workflow_id):
                    pass
            except LeaseLost:
                _log.info("workflow lost to another worker", workflow=str(workflow_id))

    async def _load(self, workflow_id: uuid.UUID) -> tuple[WorkflowRow | None, dict[int, Any]]:
        async with self.database.tenant_transaction() as conn:
            row = await repo.get(conn, workflow_id)
            done = await repo.outputs(conn, workflow_id) if row is not None else {}
        return row, done

    async def _advance(self, tenant_id: str, workflow_id: uuid.UUID) -> bool:
        """One step (or one change of status); whether to go on."""
        row, done = await self._load(workflow_id)
        if row is None or row.lease_owner != self.owner:
            return False
        definition = self.registry.find(row.definition)
        if definition is None:
            _log.warning("unknown workflow definition: left for another worker",
                         definition=row.definition)  # fmt: skip
            await self._release(row, UNKNOWN_DEFINITION_DELAY)
            return False
        if definition.platform_only and tenant_id != PLATFORM_TENANT:  # never run: see check_owner
            reason = f"workflow {definition.name!r} is the platform's alone: not run"
            await self._finish(tenant_id, row, "failed", None, reason=reason)
            return False
        if row.status == "running":
            return await self._forward(tenant_id, row, definition, done)
        if row.status == "compensating":
            return await self._compensate(tenant_id, row, definition, done)
        await self._release(row, None)  # parked or finished meanwhile: let go
        return False

    async def _forward(
        self, tenant_id: str, row: WorkflowRow, definition: WorkflowDefinition, done: dict[int, Any]
    ) -> bool:
        if row.cancel_requested:
            return await self._give_up(tenant_id, row, "cancelled", cancelled=True)
        if row.position >= len(definition.steps):
            outputs = {s.name: done.get(i) for i, s in enumerate(definition.steps)}
            await self._finish(tenant_id, row, "completed", outputs)
            return False
        step = definition.steps[row.position]
        outcome = await self._attempt(
            tenant_id, row, definition, step, position=row.position, done=done
        )
        if outcome.done:
            return True
        if not outcome.exhausted:
            await self._release(row, step.retry.delay(outcome.attempt))
            return False
        return await self._give_up(tenant_id, row, f"step {step.name!r} failed: {outcome.error}")

    async def _compensate(
        self, tenant_id: str, row: WorkflowRow, definition: WorkflowDefinition, done: dict[int, Any]
    ) -> bool:
        index = row.compensate_from
        while index >= 0 and (definition.steps[index].compensation is None or index not in done):
            index -= 1
        if index < 0:
            final = "cancelled" if row.cancel_requested else "compensated"
            await self._finish(tenant_id, row, final, None)
            return False
        if index != row.compensate_from:
            await self._write(row, {"compensate_from": index})
        step = definition.steps[index]
        outcome = await self._attempt(
            tenant_id, row, definition, step, position=index, done=done, back=True
        )
        if outcome.done:
            return True
        if not outcome.exhausted:
            await self._release(row, step.retry.delay(outcome.attempt))
            return False
        reason = f"compensation of step {step.name!r} keeps failing: {outcome.error}"
        await self._status(tenant_id, row, "parked", reason, phase="compensation")
        return False

    async def _attempt(
        self,
        tenant_id: str,
        row: WorkflowRow,
        definition: WorkflowDefinition,
        step: Step,
        *,
        position: int,
        done: dict[int, Any],
        back: bool = False,
    ) -> _Outcome:
        phase = "compensation" if back else "forward"
        db = self.database
        async with db.tenant_transaction() as conn:
            attempt = await repo.start_step(
                conn, row.id, position=position, phase=phase, name=step.name, owner=self.owner
            )
        action = step.compensation if back else step.action
        assert action is not None  # noqa: S101 - compensating only steps that have one
        context = StepContext(
            tenant_id=tenant_id,
            workflow_id=str(row.id),
            step=step.name,
            compensating=back,
            attempt=attempt,
            idempotency_key=f"{row.id}:{step.name}:{phase}",
            input=row.input,
            outputs={s.name: done[i] for i, s in enumerate(definition.steps) if i in done},
            output=done.get(position) if back else None,
            services=self.services,
        )
        # where the saga goes next, written with the step's checkpoint (one transaction: a crash
        # between the two would do the step again)
        advance = {"compensate_from": position - 1} if back else {"position": position + 1}
        try:
            if step.transactional:
                async with db.tenant_transaction() as conn:
                    context.connection = conn
                    async with asyncio.timeout(step.timeout):
                        output = await action(context)
                    output_json = check_json(output, f"the output of step {step.name!r}")
                    await repo.update(conn, row.id, advance, owner=self.owner)
                    await repo.finish_step(conn, row.id, position, phase, output_json)
            else:  # in a context of its own: no tenant scope or transaction of the saga's
                task = asyncio.create_task(_timed(action, context, step.timeout),
                                           context=contextvars.Context())  # fmt: skip
                output = await task
                output_json = check_json(output, f"the output of step {step.name!r}")
                async with db.tenant_transaction() as conn:
                    await repo.update(conn, row.id, advance, owner=self.owner)
                    await repo.finish_step(conn, row.id, position, phase, output_json)
        except LeaseLost:
            raise
        except Exception as exc:  # noqa: BLE001 - a step's failure is recorded, whatever it is
            error = describe(exc, step)
            if not isinstance(exc, StepFailed | TimeoutError | TenantryError):
                _log.warning("workflow step raised", step=step.name, error=repr(exc)[:_MAX_ERROR])
            async with db.tenant_transaction() as conn:
                await repo.update(conn, row.id, {}, owner=self.owner)
                await repo.fail_step(conn, row.id, position, phase, error)
            return _Outcome(False, attempt, error, attempt >= step.retry.max_attempts)
        return _Outcome(True, attempt)

    async def _release(self, row: WorkflowRow, delay: float | None) -> None:
        changes: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
        if delay is not None:
            changes["next_run_in"] = delay
        async with self.database.tenant_transaction() as conn:
            await repo.update(conn, row.id, changes, owner=self.owner)

    async def _give_up(
        self, tenant_id: str, row: WorkflowRow, reason: str, *, cancelled: bool = False
    ) -> bool:
        """Apply the strategy to a saga whose step failed for good (or that was cancelled)."""
        strategy = row.compensation_strategy
        if strategy == "automatic":
            changes = {"compensate_from": row.position - 1, "phase": "compensation"}
            await self._status(tenant_id, row, "compensating", reason, **changes)
            return True
        if strategy == "manual":
            why = "cancelled: compensation awaits an operator" if cancelled else reason
            await self._status(tenant_id, row, "parked", why, phase="forward")
            return False
        final = "cancelled" if cancelled else "failed"
        await self._finish(tenant_id, row, final, None, reason=reason)
        return False

    async def _write(self, row: WorkflowRow, changes: Mapping[str, Any]) -> None:
        async with self.database.tenant_transaction() as conn:
            await repo.update(conn, row.id, changes, owner=self.owner)

    async def _status(
        self, tenant_id: str, row: WorkflowRow, status: str, reason: str, **changes: Any
    ) -> None:
        trail = await self._trail(tenant_id)
        release = {"lease_owner": None, "lease_expires_at": None} if status == "parked" else {}
        async with self.database.tenant_transaction() as conn:
            await repo.update(conn, row.id, {"status": status, "reason": reason, **changes,
                                             **release}, owner=self.owner)  # fmt: skip
            await _audit(trail, tenant_id, row, status, reason)

    async def _finish(
        self,
        tenant_id: str,
        row: WorkflowRow,
        status: str,
        result: dict[str, Any] | None,
        *,
        reason: str | None = None,
    ) -> None:
        changes: dict[str, Any] = {
            "status": status,
            "finished": True,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if result is not None:
            try:
                changes["result"] = check_json(result, "a workflow's result")
            except InvalidInput:  # too large: the steps' outputs are in their history
                changes["reason"] = "the result is too large to keep: see the steps' outputs"
        if reason is not None:
            changes["reason"] = reason
        trail = await self._trail(tenant_id)
        async with self.database.tenant_transaction() as conn:
            await repo.update(conn, row.id, changes, owner=self.owner)
            await _audit(trail, tenant_id, row, status, reason or "")


async def _timed(action: Any, context: StepContext, seconds: float) -> Any:
    async with asyncio.timeout(seconds):
        return await action(context)


async def _audit(
    trail: ChangeLog, tenant_id: str, row: WorkflowRow, status: str, reason: str
) -> None:
    """The audit entry of a saga's new status (``workflow.completed``, ``workflow.parked``...)."""
    detail = (
        {"definition": row.definition, "reason": reason[:200]}
        if reason
        else {"definition": row.definition}
    )
    await trail.record(
        tenant_id, f"workflow.{status}", f"workflow:{row.id}", actor=row.created_by or None,
        detail=detail,
    )  # fmt: skip

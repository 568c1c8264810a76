"""Workflow definitions for the reliability tests and benchmarks, importable by a worker process
(``tenantry worker --definitions tests.workflows.effects``).

``effects.counted``: ``STEPS`` transactional steps; each writes one *effect* row (a setting
``effect:<workflow>:<step>:<random>``, so that an effect written twice would show as two rows)
and sleeps ``step_ms`` inside its transaction, so that a worker killed mid-step is likely to be
killed inside one. Input ``fail`` makes the last step fail every attempt: the saga is then
compensated, and each compensation writes an ``undo:`` row the same way. A non-transactional
step first records each attempt (``attempt:`` rows, one per attempt) and writes its effect once,
keyed by its idempotency key (``once:<key>``, inserted if absent).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Final

from sqlalchemy import text

from tenantry.context import tenant_scope
from tenantry.workflows import (
    RetryPolicy,
    Step,
    StepContext,
    StepFailed,
    WorkflowDefinition,
    default_registry,
)

STEPS: Final = 4
_INSERT = text(
    "INSERT INTO tenantry.tenant_settings (tenant_id, key, value) VALUES (:t, :k, '1') "
    "ON CONFLICT DO NOTHING"
)


async def _write(ctx: StepContext) -> dict[str, Any]:
    assert ctx.connection is not None
    kind = "undo" if ctx.compensating else "effect"
    key = f"{kind}:{ctx.workflow_id}:{ctx.step}:{uuid.uuid4().hex[:8]}"
    await ctx.connection.execute(_INSERT, {"t": ctx.tenant_id, "k": key})
    await asyncio.sleep(float(ctx.input.get("step_ms", 20)) / 1000)
    if not ctx.compensating and ctx.input.get("fail") and ctx.step == f"s{STEPS - 1}":
        raise StepFailed("the last step fails")
    return {"wrote": key}


async def _once(ctx: StepContext) -> dict[str, Any]:
    database = ctx.service("database")
    with tenant_scope(ctx.tenant_id):
        async with database.tenant_transaction() as conn:
            attempt = f"attempt:{ctx.workflow_id}:{uuid.uuid4().hex[:8]}"
            await conn.execute(_INSERT, {"t": ctx.tenant_id, "k": attempt})
        await asyncio.sleep(float(ctx.input.get("step_ms", 20)) / 1000)
        async with database.tenant_transaction() as conn:
            await conn.execute(_INSERT, {"t": ctx.tenant_id, "k": f"once:{ctx.idempotency_key}"})
    return {"once": ctx.idempotency_key}


_RETRY: Final = RetryPolicy(max_attempts=3, initial=0.05, max_delay=0.2)

COUNTED: Final = default_registry().register(
    WorkflowDefinition(
        "effects.counted",
        (
            Step("once", _once, retry=_RETRY, timeout=30),
            *(
                Step(f"s{i}", _write, _write, retry=_RETRY, timeout=30, transactional=True)
                for i in range(STEPS)
            ),
        ),
    )
)

"""The saga engine on PostgreSQL: steps checkpointed in order, retries, the three compensation
strategies, cancellation, operators' resume and compensate, leases lost and taken over, fair
claims, and another tenant seeing nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tenantry.audit.trail import trail_for
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import (
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    NotFound,
    PermissionDenied,
    TenantNotActive,
)
from tenantry.tenants import TenantRegistry, TenantStatus
from tenantry.workflows import (
    RetryPolicy,
    Step,
    StepContext,
    StepFailed,
    WorkflowDefinition,
    WorkflowManager,
    WorkflowRegistry,
    WorkflowWorker,
)
from tenantry.workflows import repository as repo
from tests.conftest import TOKEN, NewTenant

QUICK = RetryPolicy(max_attempts=3, initial=0.0, max_delay=0.0)


class Recorder:
    """Steps that record what ran, failing where a test says."""

    def __init__(self, fail: dict[str, int] | None = None, *, undo_fails: int = 0) -> None:
        self.calls: list[str] = []
        self.fail = dict(fail or {})
        self.undo_fails = undo_fails

    def action(self, name: str) -> Any:
        async def run(ctx: StepContext) -> dict[str, Any]:
            self.calls.append(f"do {name}")
            if self.fail.get(name, 0) > 0:
                self.fail[name] -= 1
                raise StepFailed(f"{name} is down")
            return {"did": name, "attempt": ctx.attempt, "seen": sorted(ctx.outputs)}

        return run

    def undo(self, name: str) -> Any:
        async def run(ctx: StepContext) -> dict[str, Any]:
            self.calls.append(f"undo {name}")
            assert ctx.output["did"] == name
            if self.undo_fails > 0:
                self.undo_fails -= 1
                raise StepFailed(f"undo {name} is down")
            return {"undid": name}

        return run

    def definition(self, steps: tuple[str, ...] = ("a", "b", "c")) -> WorkflowDefinition:
        return WorkflowDefinition(
            f"test.{uuid.uuid4().hex[:8]}",
            tuple(Step(s, self.action(s), self.undo(s), retry=QUICK) for s in steps),
        )


def setup(db: Database, tenant: str, **worker: Any) -> tuple[WorkflowManager, WorkflowWorker]:
    registry = WorkflowRegistry()
    manager = WorkflowManager(db, registry=registry)
    return manager, WorkflowWorker(db, registry, tenants=[tenant], **worker)


async def test_a_saga_runs_its_steps_in_order_and_keeps_their_outputs(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    manager, worker = setup(db, tenant)
    steps = Recorder()
    wid = await manager.create_workflow(tenant, steps.definition(), {"track": "x"}, actor="u1")
    assert (await manager.get_workflow(tenant, wid)).status == "pending"
    await worker.drain()
    view = await manager.get_workflow(tenant, wid)
    assert view.status == "completed"
    assert view.finished_at is not None
    assert steps.calls == ["do a", "do b", "do c"]
    assert view.result["c"] == {"did": "c", "attempt": 1, "seen": ["a", "b"]}
    assert [(s.name, s.phase, s.status, s.attempts) for s in view.steps or []] == [
        ("a", "forward", "done", 1), ("b", "forward", "done", 1), ("c", "forward", "done", 1),
    ]  # fmt: skip
    entries = await trail_for(db).audit_log.entries(tenant, 0, 50)
    actions = [e.entry.action for e in entries if e.entry is not None]
    assert actions == ["workflow.created", "workflow.completed"]


async def test_a_step_is_retried_then_the_saga_goes_on(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    manager, worker = setup(db, tenant)
    steps = Recorder({"b": 2})
    wid = await manager.create_workflow(tenant, steps.definition(), {})
    await worker.drain()
    view = await manager.get_workflow(tenant, wid)
    assert view.status == "completed"
    b = next(s for s in view.steps or [] if s.name == "b")
    assert b.attempts == 3
    assert b.errors == ["b is down", "b is down"]
    assert steps.calls == ["do a", "do b", "do b", "do b", "do c"]


async def test_automatic_compensation_undoes_the_completed_steps_last_first(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    manager, worker = setup(db, tenant)
    steps = Recorder({"c": 99})
    wid = await manager.create_workflow(tenant, steps.definition(), {})
    await worker.drain()
    view = await manager.get_workflow(tenant, wid)
    assert view.status == "compensated"
    assert "step 'c' failed: c is down" in view.reason
    assert steps.calls == ["do a", "do b", "do c", "do c", "do c", "undo b", "undo a"]
    phases = {(s.name, s.phase): s.status for s in view.steps or []}
    assert phases[("b", "compensation")] == phases[("a", "compensation")] == "done"


async def test_manual_parks_and_an_operator_resumes_or_compensates(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    manager, worker = setup(db, tenant)
    steps = Recorder({"b": 3})
    definition = steps.definition()
    first = await manager.create_workflow(tenant, definition, {}, compensation_strategy="manual")
    await worker.drain()
    parked = await manager.get_workflow(tenant, first)
    assert parked.status == "parked"
    assert "b is down" in parked.reason
    await manager.cancel(tenant, first, actor="ops")  # a parked saga ends at once
    assert (await manager.get_workflow(tenant, first)).status == "cancelled"
    with pytest.raises(Conflict):
        await manager.resume(tenant, first)
    steps.fail["b"] = 3
    second = await manager.create_workflow(tenant, definition, {}, compensation_strategy="manual")
    await worker.drain()
    assert (await manager.get_workflow(tenant, second)).status == "parked"
    await manager.resume(tenant, second, actor="ops")
    await worker.drain()
    assert (await manager.get_workflow(tenant, second)).status == "completed"
    steps.fail["b"] = 3
    third = await manager.create_workflow(tenant, definition, {}, compensation_strategy="manual")
    await worker.drain()
    await manager.compensate(tenant, third, actor="ops")
    await worker.drain()
    assert (await manager.get_workflow(tenant, third)).status == "compensated"
    with pytest.raises(Conflict):
        await manager.resume(tenant, third)


async def test_none_leaves_the_saga_failed_as_it_is(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    manager, worker = setup(db, tenant)
    steps = Recorder({"b": 3})
    wid = await manager.create_workflow(
        tenant, steps.definition(), {}, compensation_strategy="none"
    )
    await worker.drain()
    assert (await manager.get_workflow(tenant, wid)).status == "failed"
    assert "undo a" not in steps.calls


async def test_a_compensation_that_keeps_failing_parks_the_saga(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    manager, worker = setup(db, tenant)
    steps = Recorder({"c": 3}, undo_fails=3)
    wid = await manager.create_workflow(tenant, steps.definition(), {})
    await worker.drain()
    view = await manager.get_workflow(tenant, wid)
    assert view.status == "parked"
    assert "compensation of step 'b' keeps failing" in view.reason
    steps.undo_fails = 0
    await manager.resume(tenant, wid, actor="ops")
    await worker.drain()
    assert (await manager.get_workflow(tenant, wid)).status == "compensated"
    assert steps.calls[-3:] == ["undo b", "undo b", "undo a"] or steps.calls.count("undo a") == 1


async def test_cancelling_a_running_saga_compensates_after_its_step(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    manager, worker = setup(db, tenant)
    gate, started = asyncio.Event(), asyncio.Event()
    done: list[str] = []

    async def slow(ctx: StepContext) -> str:
        started.set()
        await gate.wait()
        done.append(ctx.step)
        return "ok"

    async def undo(ctx: StepContext) -> str:
        done.append(f"undo {ctx.step}")
        return "ok"

    definition = WorkflowDefinition(
        "test.cancel", (Step("first", slow, undo), Step("second", slow, undo))
    )
    wid = await manager.create_workflow(tenant, definition, {})
    run = asyncio.create_task(worker.drain())
    await asyncio.wait_for(started.wait(), 10)
    assert (await manager.cancel(tenant, wid, actor="u1")).cancel_requested
    gate.set()
    await run
    view = await manager.get_workflow(tenant, wid)
    assert view.status == "cancelled"
    assert done == ["first", "undo first"]
    pending = await manager.create_workflow(tenant, definition, {})
    assert (await manager.cancel(tenant, pending)).status == "cancelled"
    with pytest.raises(Conflict):
        await manager.cancel(tenant, pending)


async def test_a_transactional_step_commits_with_its_checkpoint_or_not_at_all(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    manager, worker = setup(db, tenant)

    async def write(ctx: StepContext) -> str:
        assert ctx.connection is not None
        await ctx.connection.execute(
            text("INSERT INTO tenantry.tenant_settings (tenant_id, key, value) VALUES "
                 "(:t, :k, '1')"),
            {"t": ctx.tenant_id, "k": f"effect:{ctx.idempotency_key}"},
        )  # fmt: skip
        if ctx.attempt == 1:  # another worker takes the saga over while this step runs
            with tenant_scope(ctx.tenant_id):
                async with db.direct_transaction(ctx.tenant_id) as other:
                    await other.execute(text("UPDATE tenantry.workflows SET lease_owner = 'thief'"))
        return "written"

    definition = WorkflowDefinition("test.tx", (Step("write", write, transactional=True),))
    wid = await manager.create_workflow(tenant, definition, {})
    assert await worker.run_once() == 1  # the lease was lost: the effect rolled back
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            effects = await conn.scalar(
                text("SELECT count(*) FROM tenantry.tenant_settings WHERE key LIKE 'effect:%'")
            )
            await conn.execute(
                text("UPDATE tenantry.workflows SET lease_expires_at = now() - interval '1 s'")
            )
    assert effects == 0
    await worker.drain()  # the lease lapsed: claimed again, written once
    assert (await manager.get_workflow(tenant, wid)).status == "completed"
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            effects = await conn.scalar(
                text("SELECT count(*) FROM tenantry.tenant_settings WHERE key LIKE 'effect:%'")
            )
    assert effects == 1


async def test_a_dead_workers_saga_is_resumed_by_another(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    manager, worker = setup(db, tenant)
    steps = Recorder()
    wid = await manager.create_workflow(tenant, steps.definition(), {})
    async with db.transaction() as conn:  # a worker claims it and dies
        claimed = await repo.claim(
            conn, "dead", limit=10, lease=1.0, caps={}, default_cap=5, only=[tenant]
        )
    assert [w for _, w in claimed] == [uuid.UUID(wid)]
    assert await worker.run_once() == 0  # leased to the dead worker
    await asyncio.sleep(1.1)
    await worker.drain()
    assert (await manager.get_workflow(tenant, wid)).status == "completed"


async def test_claims_are_fair_and_capped_per_tenant(db: Database, new_tenant: NewTenant) -> None:
    busy, quiet = (await new_tenant("busy")).id, (await new_tenant("quiet")).id
    registry = WorkflowRegistry()
    manager = WorkflowManager(db, registry=registry)
    steps = Recorder()
    definition = steps.definition(("only",))
    for _ in range(30):
        await manager.create_workflow(busy, definition, {})
    first = await manager.create_workflow(quiet, definition, {})
    async with db.transaction() as conn:
        claimed = await repo.claim(
            conn, "w1", limit=3, lease=30.0, caps={"free": 5}, default_cap=5, only=[busy, quiet]
        )
    assert (quiet, uuid.UUID(first)) in claimed  # its first saga before the busy one's second
    async with db.transaction() as conn:
        more = await repo.claim(
            conn, "w2", limit=50, lease=30.0, caps={"free": 5}, default_cap=5, only=[busy, quiet]
        )
    assert len([t for t, _ in claimed + more if t == busy]) == 5  # the tier's cap, all workers


async def test_bad_input_and_other_tenants(db: Database, new_tenant: NewTenant) -> None:
    tenant, other = (await new_tenant()).id, (await new_tenant()).id
    manager, _ = setup(db, tenant)
    definition = Recorder().definition()
    with pytest.raises(NotFound):
        await manager.create_workflow(tenant, "no.such.definition", {})
    with pytest.raises(InvalidInput):
        await manager.create_workflow(tenant, definition, {"x": "y" * 70_000})
    with pytest.raises(InvalidInput):
        await manager.create_workflow(tenant, definition, {}, compensation_strategy="sometimes")
    with pytest.raises(InvalidInput):
        await manager.create_workflow(tenant, definition, {}, idempotency_key="no spaces")
    wid = await manager.create_workflow(tenant, definition, {}, idempotency_key="order-1")
    assert await manager.create_workflow(tenant, definition, {}, idempotency_key="order-1") == wid
    with pytest.raises(NotFound):
        await manager.get_workflow(other, wid)
    with pytest.raises(NotFound):
        await manager.cancel(other, wid)
    assert await manager.list_workflows(other) == []
    assert [w.id for w in await manager.list_workflows(tenant)] == [wid]
    await TenantRegistry(db).update_status(tenant, TenantStatus.SUSPENDED)
    with pytest.raises(TenantNotActive):
        await manager.create_workflow(tenant, definition, {})


async def test_a_steps_error_keeps_no_database_text(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    manager, worker = setup(db, tenant)

    async def broken(ctx: StepContext) -> str:
        raise DatabaseUnavailable('relation "tenantry.secret_table" does not exist at 10.0.0.7')

    async def odd(ctx: StepContext) -> str:
        raise ValueError("card 4111-1111 declined")

    once = RetryPolicy(max_attempts=1)
    for action in (broken, odd):
        definition = WorkflowDefinition(
            f"test.err{uuid.uuid4().hex[:6]}", (Step("s", action, retry=once),)
        )
        wid = await manager.create_workflow(tenant, definition, {}, compensation_strategy="none")
        await worker.drain()
        view = await manager.get_workflow(tenant, wid)
        [step] = view.steps or []
        assert view.status == "failed"
        assert step.errors in (["DatabaseUnavailable: database unavailable"], ["ValueError"])
        assert "secret_table" not in view.reason
        assert "4111" not in view.reason


async def test_a_platform_only_workflow_is_the_platforms_alone(
    db: Database, new_tenant: NewTenant
) -> None:
    """A definition whose steps act on other tenants (provisioning) is refused to a tenant, and
    a worker that finds one under a tenant fails it without running a step."""
    tenant = (await new_tenant()).id
    manager, worker = setup(db, tenant)
    steps = Recorder()
    shared = steps.definition()
    definition = WorkflowDefinition(shared.name, shared.steps, platform_only=True)
    with pytest.raises(PermissionDenied):
        await manager.create_workflow(tenant, definition, {})
    assert (await manager.list_workflows(tenant)) == []
    workflow_id = uuid.uuid4()
    with tenant_scope(tenant):  # written past the manager, as a bug or a restore could
        async with db.tenant_transaction() as conn:
            await repo.insert(
                conn, tenant_id=tenant, workflow_id=workflow_id, definition=definition.name,
                input_json="{}", strategy="automatic", idempotency_key=None, actor="x",
            )  # fmt: skip
    await worker.drain()
    found = await manager.get_workflow(tenant, str(workflow_id))
    assert (found.status, found.reason) == (
        "failed", f"workflow {definition.name!r} is the platform's alone: not run"
    )  # fmt: skip
    assert steps.calls == []


async def test_a_tenant_cannot_provision_another_over_http(
    client: httpx.AsyncClient, new_tenant: NewTenant
) -> None:
    """``tenant_provisioning`` names its tenant in its input: started by a tenant it would grant
    admin in the tenant named. It is refused (403) and nothing starts."""
    attacker, victim = (await new_tenant()).id, (await new_tenant()).id
    headers = {**TOKEN, "X-Tenant-ID": attacker}
    body = {
        "definition": "tenant_provisioning",
        "input": {"tenant_id": victim, "display_name": "x", "tier": "enterprise",
                  "admin_user": "mallory"},
    }  # fmt: skip
    answer = await client.post("/workflows", json=body, headers=headers)
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    listed = await client.get("/workflows", headers=headers)
    assert listed.status_code == 200
    assert listed.json() == []

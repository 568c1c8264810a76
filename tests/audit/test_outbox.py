"""The audit queue: entries written with their change, moved into the tree exactly once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from structlog.testing import capture_logs

from tenantry.access.manager import AccessControl
from tenantry.audit.models import audit_entries, audit_pending
from tenantry.audit.schemas import AuditEntry
from tenantry.audit.trail import AuditTrail, trail_for
from tenantry.context import PLATFORM_TENANT, tenant_scope
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import (
    AuditUnavailable,
    AuditVerificationError,
    BulkheadFull,
    DatabaseUnavailable,
    IsolationViolation,
    SettingNotFound,
    TenantContextError,
)
from tenantry.tenants import TenantSettings
from tests.audit.refusal import REFUSED, refusing
from tests.conftest import NewTenant


async def count(db: Database, tenant: str, table: object) -> int:
    """Rows of ``table`` straight from PostgreSQL (no integration on the way)."""
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            return int(await conn.scalar(select(func.count()).select_from(table)))  # type: ignore[arg-type]


async def queue(db: Database, tenant: str, *resources: str) -> None:
    """Queue a ``test.queued`` entry per resource, all in one committed transaction."""
    trail = trail_for(db)
    with tenant_scope(tenant):
        async with db.tenant_transaction():
            for resource in resources:
                await trail.record(tenant, "test.queued", resource, actor="t")


async def test_concurrent_changes_are_each_audited_once(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    access = AccessControl(db)
    granted = await asyncio.gather(
        *(access.grant(tenant, f"user-{n:02d}", "viewer", actor="t") for n in range(24))
    )
    assert all(granted)
    log = trail_for(db).audit_log
    entries = await log.entries(tenant, 0, 100)  # a read integrates what is queued
    assert [e.seq for e in entries] == list(range(24))
    resources = sorted(e.entry.resource for e in entries if e.entry)
    assert resources == [f"principal:user-{n:02d}" for n in range(24)]
    assert await count(db, tenant, audit_pending) == 0
    assert (await log.verify(tenant)).ok


async def test_the_queue_reaches_the_tree_without_a_read(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    await AccessControl(db).grant(tenant, "mira", "editor")
    for _ in range(200):  # the background integration runs within milliseconds
        if await count(db, tenant, audit_entries) == 1:
            break
        await asyncio.sleep(0.01)
    assert await count(db, tenant, audit_entries) == 1
    assert await count(db, tenant, audit_pending) == 0


@pytest.mark.parametrize("integrators", [2, 4])
async def test_processes_integrating_at_once_move_each_entry_once(
    db: Database, runtime: DatabaseRuntime, new_tenant: NewTenant, integrators: int
) -> None:
    """Integrations of one tenant's queue take turns (the tree's lock comes before the queue is
    taken): no entry moves twice, and two processes never deadlock on the queue's rows."""
    tenant = (await new_tenant()).id
    trail = trail_for(db)
    others = [runtime.open_database() for _ in range(integrators - 1)]  # "other processes"
    outboxes = [trail.outbox, *(AuditTrail.for_database(o).outbox for o in others)]
    for outbox in outboxes:
        outbox.batch = 7  # many small batches, interleaved
    try:
        for round_no in range(3):
            await queue(db, tenant, *(f"n:{round_no}:{n:03d}" for n in range(60)))
            # This process's background integration starts 10 ms after commit: one more.
            moved = await asyncio.gather(*(outbox.integrate(tenant) for outbox in outboxes))
            assert sum(moved) <= 60
    finally:
        trail.outbox.batch = 500
        for other in others:
            await other.dispose()
    entries = await trail.audit_log.entries(tenant, 0, 1000)
    assert [e.seq for e in entries] == list(range(180))
    assert sorted(e.entry.resource for e in entries if e.entry) == sorted(
        f"n:{r}:{n:03d}" for r in range(3) for n in range(60)
    )
    assert await count(db, tenant, audit_pending) == 0
    assert (await trail.audit_log.verify(tenant)).ok


async def test_an_altered_queued_entry_is_refused_and_kept(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    trail = trail_for(db)
    await trail.prepare(tenant)
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            # forged in the transaction that queues it: the background integration never sees
            # the real row; the app role may not UPDATE the queue: delete and re-insert
            await trail.record(tenant, "test.queued", "n:1", actor="t")
            row = (await conn.execute(text("select * from tenantry.audit_pending"))).one()
            await conn.execute(text("delete from tenantry.audit_pending"))
            await conn.execute(
                text(
                    "insert into tenantry.audit_pending (tenant_id, id, leaf_hash, entry)"
                    " values (:t, :id, :leaf, :entry)"
                ),
                {"t": tenant, "id": row.id, "leaf": b"\x00" * 32, "entry": row.entry},
            )
    with pytest.raises(AuditVerificationError, match="altered"):
        await trail.outbox.integrate(tenant)
    assert await count(db, tenant, audit_pending) == 1
    assert await count(db, tenant, audit_entries) == 0


async def test_queued_entries_come_before_a_later_direct_append(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    trail = trail_for(db)
    await queue(db, tenant, "first")
    seq = await trail.audit_log.append(tenant, AuditEntry(actor="t", action="test.direct"))
    assert seq == 1
    entries = await trail.audit_log.entries(tenant)
    assert [e.entry.action for e in entries if e.entry] == ["test.queued", "test.direct"]


async def test_entries_queued_before_a_shredding_do_not_block_reads(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    trail = trail_for(db)
    await trail.audit_log.append(tenant, AuditEntry(actor="t", action="test.before"))
    await queue(db, tenant, "late")
    await trail.keyring.destroy_tenant_keys(tenant)  # past SecurityManager: nothing integrated
    assert await trail.audit_log.size(tenant) == 1  # the read goes on without the queued entry
    assert await count(db, tenant, audit_pending) == 1
    report = await trail.audit_log.verify(tenant)
    assert report.ok, report.problems


async def test_a_refused_entry_fails_its_change_in_tenantrys_words(
    db: Database, runtime: DatabaseRuntime, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    settings = TenantSettings(tenant, db)
    async with refusing(runtime.admin_url, tenant):
        with pytest.raises(AuditUnavailable) as refused:
            await settings.set("default_locale", "de-DE", actor="t")
    assert refused.value.detail == (
        f"the audit log of tenant {tenant!r} could not take the change's entry, so the change "
        "was not made"
    )
    assert REFUSED not in str(refused.value)  # the database's text goes to the debug log
    with pytest.raises(SettingNotFound):
        await settings.get("default_locale")
    assert await count(db, tenant, audit_pending) == 0


class _RollBack(Exception):
    pass


async def test_a_platform_entry_queued_in_a_tenants_transaction_commits_with_it(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant, other = (await new_tenant()).id, (await new_tenant()).id
    trail = trail_for(db)
    await trail.prepare(PLATFORM_TENANT)  # as a manager readies the trail before its transaction
    start = await trail.audit_log.size(PLATFORM_TENANT)

    with tenant_scope(tenant), pytest.raises(_RollBack):
        async with db.tenant_transaction():
            await trail.record(PLATFORM_TENANT, "test.crossed", f"tenant:{tenant}", actor="t")
            raise _RollBack
    assert await trail.audit_log.size(PLATFORM_TENANT) == start
    with tenant_scope(tenant):
        async with db.tenant_transaction():
            await trail.record(PLATFORM_TENANT, "test.crossed", f"tenant:{tenant}", actor="t")
    [stored] = await trail.audit_log.entries(PLATFORM_TENANT, start=start)
    assert stored.entry is not None
    assert (stored.entry.action, stored.entry.tenant) == ("test.crossed", PLATFORM_TENANT)
    assert await count(db, tenant, audit_pending) == 0  # nothing was queued for the tenant

    with tenant_scope(tenant), pytest.raises(TenantContextError):  # only the platform's tree
        async with db.tenant_transaction():
            await trail.record(other, "test.crossed", f"tenant:{tenant}", actor="t")


async def test_a_tenant_transaction_reaches_platform_rows_only_through_the_function(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    row = {"id": "fn-probe", "leaf": b"\x00" * 32, "entry": b"sealed"}
    insert = text(
        "insert into tenantry.audit_pending (tenant_id, id, leaf_hash, entry)"
        " values ('platform', :id, :leaf, :entry)"
    )
    queue = text("select tenantry.queue_platform_entry(:id, :leaf, :entry)")
    with tenant_scope(tenant), pytest.raises(IsolationViolation):
        async with db.tenant_transaction() as conn:
            await conn.execute(insert, row)
    with pytest.raises(DBAPIError, match="needs a tenant transaction"):
        async with db.transaction() as conn:
            await conn.execute(queue, row)
    with tenant_scope(tenant), pytest.raises(_RollBack):  # the probe row must not stay queued
        async with db.tenant_transaction() as conn:
            await conn.execute(queue, row)
            # the transaction is the tenant's again: it sees its own rows, not the platform's
            setting = await conn.execute(text("select current_setting('tenantry.tenant_id')"))
            assert setting.scalar_one() == tenant
            visible = await conn.execute(text("select count(*) from tenantry.audit_pending"))
            assert visible.scalar_one() == 0
            raise _RollBack


async def test_a_busy_database_defers_the_integration_with_a_warning_not_a_traceback(
    db: Database, new_tenant: NewTenant
) -> None:
    """A full lane, an open breaker or a lost connection is the database being busy or away:
    the background integration says so in one line and tries again; a reader still gets it."""
    tenant = (await new_tenant()).id
    trail = trail_for(db)
    outbox = trail.outbox
    original = outbox.prepare
    refusals = [DatabaseUnavailable("busy"), BulkheadFull("full lane", retry_after=0.1)]

    async def busy_first(tenant_id: str) -> None:
        if tenant_id == tenant and refusals:
            raise refusals.pop(0)
        if original is not None:
            await original(tenant_id)

    outbox.prepare = busy_first
    try:
        with capture_logs() as logs:
            await queue(db, tenant, "n:busy")
            for _ in range(200):  # retried 10 ms, then 50 ms after the commit
                if await count(db, tenant, audit_entries) == 1:
                    break
                await asyncio.sleep(0.01)
    finally:
        outbox.prepare = original
    assert await count(db, tenant, audit_entries) == 1
    mine = [e for e in logs if e.get("tenant") == tenant]
    deferred = [e for e in mine if e["event"] == "audit queue integration deferred"]
    assert [e["reason"] for e in deferred] == ["DatabaseUnavailable", "BulkheadFull"]
    assert all(e["log_level"] == "warning" and "exc_info" not in e for e in deferred)
    assert not [e for e in mine if e["event"] == "audit queue integration failed"]

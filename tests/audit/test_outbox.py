"""The audit queue: entries written with their change, moved into the tree exactly once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text

from tenantry.access.manager import AccessControl
from tenantry.audit.models import audit_entries, audit_pending
from tenantry.audit.schemas import AuditEntry
from tenantry.audit.trail import AuditTrail, trail_for
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import AuditVerificationError
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


async def test_two_processes_integrating_move_each_entry_once(
    db: Database, runtime: DatabaseRuntime, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    trail = trail_for(db)
    other_db = runtime.open_database()  # "another process": its own pool, keyring and log
    other = AuditTrail.for_database(other_db)
    other.outbox.batch = trail.outbox.batch = 7  # many small batches, interleaved
    try:
        await queue(db, tenant, *(f"n:{n:03d}" for n in range(120)))
        # This process's background integration starts 10 ms after commit: three integrators.
        moved = await asyncio.gather(trail.outbox.integrate(tenant), other.outbox.integrate(tenant))
        assert sum(moved) <= 120
    finally:
        trail.outbox.batch = 500
        await other_db.dispose()
    entries = await trail.audit_log.entries(tenant, 0, 1000)
    assert [e.seq for e in entries] == list(range(120))
    assert sorted(e.entry.resource for e in entries if e.entry) == [
        f"n:{n:03d}" for n in range(120)
    ]
    assert await count(db, tenant, audit_pending) == 0
    assert (await trail.audit_log.verify(tenant)).ok


async def test_an_altered_queued_entry_is_refused_and_kept(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    trail = trail_for(db)
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            # Forged in the transaction that queues it, so no integration (this process's runs
            # in the background after commit) ever sees the genuine row. The app role may not
            # UPDATE the queue: delete and re-insert a forged row.
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

"""The retention job: each tenant's old finished workflows, security events and delivered alert
messages deleted by its tier's days; recent ones, unfinished ones, queued messages and other
tiers' longer-kept data untouched; each deletion audited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tenantry.api import create_app
from tenantry.audit.trail import trail_for
from tenantry.config import Settings
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.lifecycle import load_policies
from tenantry.lifecycle.retention import RetentionJob
from tenantry.metadata.manager import MetadataManager
from tenantry.tenants import TenantRegistry
from tests.conftest import NewTenant

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


async def seed(db: Database, tenant: str) -> None:
    """Per kind, one row 10 days old and one an hour old (and an old queued message)."""
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            for age, status in ((timedelta(days=10), "completed"), (timedelta(hours=1), "failed"),
                                (timedelta(days=10), "running")):  # fmt: skip
                finished = NOW - age if status != "running" else None
                await conn.execute(
                    text("INSERT INTO tenantry.workflows (tenant_id, id, definition, input, "
                         "compensation_strategy, status, finished_at) VALUES (:t, :id, 'x', "
                         "'{}', 'none', :s, :f)"),
                    {"t": tenant, "id": uuid.uuid4(), "s": status, "f": finished},
                )  # fmt: skip
            for age in (timedelta(days=40), timedelta(hours=1)):
                await conn.execute(
                    text("INSERT INTO tenantry.security_events (tenant_id, occurred_at, kind) "
                         "VALUES (:t, :at, 'probe')"),
                    {"t": tenant, "at": NOW - age},
                )  # fmt: skip
            for age, status in ((timedelta(days=10), "sent"), (timedelta(hours=1), "sent"),
                                (timedelta(days=10), "queued")):  # fmt: skip
                await conn.execute(
                    text("INSERT INTO tenantry.alert_outbox (tenant_id, id, receiver, target_key, "
                         "rule_name, transition, message, status, created_at) VALUES (:t, :id, "
                         "'r', 'k', 'rule', 'firing', '{}', :s, :at)"),
                    {"t": tenant, "id": uuid.uuid4().hex, "s": status, "at": NOW - age},
                )  # fmt: skip


async def counts(db: Database, tenant: str) -> dict[str, int]:
    found = {}
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            for table in ("workflows", "security_events", "alert_outbox"):
                found[table] = int(
                    await conn.scalar(text(f"SELECT count(*) FROM tenantry.{table}")) or 0
                )
    return found


async def test_old_data_goes_by_the_tiers_days(db: Database, new_tenant: NewTenant) -> None:
    free = (await new_tenant()).id
    enterprise = (await new_tenant(tier="enterprise")).id
    for tenant in (free, enterprise):
        await seed(db, tenant)
    job = RetentionJob(db, load_policies(), clock=lambda: NOW)
    visit = await job.apply(free)
    # free keeps workflows and deliveries 7 days, security events 30
    assert dict(visit.deleted) == {"workflows": 1, "security_events": 1, "alert_deliveries": 1}
    assert not visit.more
    assert await counts(db, free) == {"workflows": 2, "security_events": 1, "alert_outbox": 2}
    kept = await job.apply(enterprise)  # enterprise keeps all of them a year or more
    assert set(kept.deleted.values()) == {0}
    assert await counts(db, enterprise) == {"workflows": 3, "security_events": 2, "alert_outbox": 3}
    entries = await trail_for(db).audit_log.entries(free, 0, 100)
    audited = [e.entry for e in entries if e.entry and e.entry.action == "retention.delete"]
    assert [dict(a.detail or {}) for a in audited] == [
        {"workflows": "1", "security_events": "1", "alert_deliveries": "1"}
    ]
    again = await job.apply(free)  # nothing more to delete: nothing audited
    assert set(again.deleted.values()) == {0}


async def drift(db: Database, tenant: str, total: int) -> None:
    """The tenant's stored-bytes total set by hand (as a restore could leave it): no versions."""
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            await conn.execute(
                text("INSERT INTO tenantry.tenant_settings (tenant_id, key, value) VALUES "
                     "(:t, 'metadata.storage_bytes', to_jsonb(CAST(:n AS bigint))) ON CONFLICT "
                     "(tenant_id, key) DO UPDATE SET value = excluded.value"),
                {"t": tenant, "n": total},
            )  # fmt: skip


async def test_the_rounds_recount_storage_totals_in_turn(
    db: Database, new_tenant: NewTenant
) -> None:
    """Each round recounts at most ``recount_batch`` tenants' totals, first queued first; a
    sweep queues every active tenant; a tenant no longer active is skipped."""
    metadata = MetadataManager(db)
    tenants = [(await new_tenant()).id for _ in range(3)]
    suspended = (await new_tenant()).id
    for tenant in (*tenants, suspended):
        await drift(db, tenant, 12_345)
    await TenantRegistry(db).update_status(suspended, "suspended")
    job = RetentionJob(
        db, load_policies(), sweep_every=0, recount=metadata.recount_storage, recount_batch=2
    )
    for tenant in (*tenants, suspended):
        job.recount_soon(tenant)
    job.recount_soon(tenants[0])  # queued once
    await job.before_round(1)
    assert [await metadata.storage_used(t) for t in tenants] == [0, 0, 12_345]
    assert job.recounts_due == (tenants[2], suspended)
    await job.before_round(2)  # the rest, the suspended tenant skipped
    assert [await metadata.storage_used(t) for t in (*tenants, suspended)] == [0, 0, 0, 12_345]
    assert (job.recounted, job.recount_failures, job.recounts_due) == (3, 0, ())
    await job.sweep()  # every active tenant queued again, not the suspended one
    assert set(tenants) <= set(job.recounts_due)
    assert suspended not in job.recounts_due
    assert RetentionJob(db, load_policies(), sweep_every=0).recounts_due == ()


async def test_the_services_retention_job_recounts(settings: Settings) -> None:
    """The app's job is given the metadata manager's recount."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state.tenantry
        tenant = f"rc-{uuid.uuid4().hex[:10]}"
        await state.tenants.create(tenant, "Recount")
        await drift(state.database, tenant, 999)
        job = state.lifecycle.retention
        assert job is not None
        assert job.recount is not None
        job.recount_soon(tenant)
        while tenant in job.recounts_due:
            await job.recount_some()
        assert await state.metadata.storage_used(tenant) == 0

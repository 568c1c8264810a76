"""Erasure: a deleted tenant's rows go from every tenant table but its audit tree's, its keys are
destroyed, its tree still verifies and no longer opens; another tenant keeps everything; the
erasure takes turns with the audit queue's integration (no deadlock); the CLI command."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from tenantry.access.manager import AccessControl
from tenantry.alerts.manager import AlertManager
from tenantry.audit import lock_statement, trail_for
from tenantry.cache import CacheManager
from tenantry.context import PLATFORM_TENANT, tenant_scope
from tenantry.db.engine import Database
from tenantry.db.rls import tenant_tables
from tenantry.errors import Conflict, KeysDestroyed, TenantContextError, TenantNotFound
from tenantry.keys import Keyring
from tenantry.lifecycle import ErasureReport, LifecycleManager
from tenantry.lifecycle.erasure import KEPT_TABLES
from tenantry.metadata import MetadataManager
from tenantry.principal import ClientInfo
from tenantry.security import SecurityManager
from tenantry.sessions import ApiKeys, SessionManager
from tenantry.tenants import TenantRegistry, TenantSettings, TenantStatus
from tenantry.threats.events import SecurityEvents
from tenantry.workflows import Step, WorkflowDefinition, WorkflowManager, WorkflowRegistry
from tests.conftest import NewTenant, require_redis
from tests.isolation.rows import insert_sample

PHONE = ClientInfo(ip="198.51.100.7", user_agent="LowtideApp/3.2", device_id="phone-7")
RULES = """
alerts:
  - name: slow
    condition: http_request_seconds_p95 > 1s
    for: 1m
    severity: warning
"""
_TREE = ("audit_entries", "audit_nodes", "audit_checkpoints")


async def _noop(ctx: Any) -> dict[str, Any]:
    return {}


async def populate(db: Database, tenant: str) -> dict[str, Any]:
    """Data of ``tenant`` in many managers, and a sample row in every other tenant table."""
    await TenantSettings(tenant, db).set("ui.theme", {"dark": True}, actor="ada")
    metadata = MetadataManager(db)
    record = await metadata.create_metadata(
        tenant,
        "business",
        {"artist": "Nadia Vos", "iban": "NL91ABNA0417164300"},
        sensitive_fields=["iban"],
        actor="ada",
    )
    session_id, _ = await SessionManager(db).create_session(tenant, "ada", client=PHONE)
    await ApiKeys(db).create(tenant, "ci", "svc-ci", actor="ada")
    await AccessControl(db).grant(tenant, "ada", "admin", actor="ops")
    await AlertManager(db).set_rules(tenant, RULES, actor="ada")
    definition = WorkflowDefinition(f"test.{uuid.uuid4().hex[:8]}", (Step("a", _noop),))
    workflows = WorkflowManager(db, registry=WorkflowRegistry())
    workflow = await workflows.create_workflow(tenant, definition, {}, actor="ada")
    await SecurityEvents(db).record(tenant, "failed_validation", principal_id="ada")
    samples: set[str] = {"audit_pending", *KEPT_TABLES}
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            made: dict[str, dict[str, Any]] = {}
            for table in tenant_tables():
                if table.name not in samples:
                    await insert_sample(conn, table, tenant, made)
    await SecurityManager(db).audit_log.checkpoint(tenant)  # its queue integrated, then signed
    return {"record": record, "session": session_id, "workflow": workflow}


async def rows_of(db: Database, tenant: str) -> dict[str, int]:
    """Every tenant table's rows of ``tenant`` (as the tenant, and by its id)."""
    counts = {}
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            for table in tenant_tables():
                query = text(f"SELECT count(*) FROM tenantry.{table.name} WHERE tenant_id = :t")
                counts[table.name] = int(await conn.scalar(query, {"t": tenant}) or 0)
    return counts


async def deleted_tenant(db: Database, new_tenant: NewTenant) -> str:
    tenant = (await new_tenant("erase")).id
    await populate(db, tenant)
    await TenantRegistry(db).update_status(tenant, TenantStatus.DELETED, actor="ops")
    return tenant


async def test_erasure_leaves_only_the_audit_trees_hashes_and_spares_another_tenant(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("erase")).id
    other = (await new_tenant("keep")).id
    await populate(db, tenant)
    kept = await populate(db, other)
    before = await rows_of(db, tenant)
    empty = {name for name, count in before.items() if count == 0}
    assert empty == {"audit_pending"}, before  # every other table has rows of it
    other_before = await rows_of(db, other)
    await TenantRegistry(db).update_status(tenant, TenantStatus.DELETED, actor="ops")

    report = await LifecycleManager(db).erase_tenant(tenant, actor="ops")

    assert report.erased, report.as_dict()
    after = await rows_of(db, tenant)
    assert {n for n, c in after.items() if c} == {*_TREE, "tenant_keys"}, after
    by_table = {t.table: t for t in report.tables}
    assert {t.name for t in tenant_tables()} <= set(by_table)  # every table checked
    for name, count in after.items():
        assert by_table[name].left == count
    assert by_table["metadata_records"].deleted == before["metadata_records"]
    assert report.rows_left == 0
    assert report.rows_deleted >= sum(before[n] for n in before if n not in KEPT_TABLES)
    # the audit tree still verifies, by its hashes only: no entry opens
    audit = report.audit
    assert audit.verified
    assert audit.problems == ()
    assert audit.size == after["audit_entries"] > 0
    assert audit.payloads_unavailable == audit.size
    assert audit.probe_opened_before is True
    assert audit.probe_error_after == "KeysDestroyed"
    security = SecurityManager(db)
    assert all(e.entry is None for e in await security.audit_log.entries(tenant, 0, 1000))
    fresh = Keyring(db)
    [*_, newest] = await fresh.keys(tenant)
    assert newest.destroyed_at is not None
    with pytest.raises(KeysDestroyed):
        await fresh.encrypt(tenant, b"x", purpose="p", record_id="r")
    assert report.keys.keys == report.keys.destroyed > 0
    assert report.keys.destroyed_now == report.keys.keys
    # the registry row stays, deleted
    assert (await TenantRegistry(db).get(tenant)).status is TenantStatus.DELETED
    # the platform's log holds the erasure, with the report's hash
    platform = await security.audit_log.size(PLATFORM_TENANT)
    entries = await security.audit_log.entries(PLATFORM_TENANT, max(0, platform - 50), 50)
    [erase] = [e.entry for e in entries if e.entry and e.entry.action == "tenant.erase"
               and e.entry.resource == f"tenant:{tenant}"]  # fmt: skip
    assert erase.detail["report_sha256"] == report.digest()
    assert erase.detail["rows_left"] == 0
    assert erase.detail["erased"] is True

    # the other tenant: every row still there, and readable
    assert await rows_of(db, other) == other_before
    record = await MetadataManager(db).get_metadata(other, kept["record"])
    assert record.content["iban"] == "NL91ABNA0417164300"
    assert (await TenantSettings(other, db).get("ui.theme")).value == {"dark": True}
    assert "slow" in [r.name for r in await AlertManager(db).rules(other)]
    workflow = await WorkflowManager(db).get_workflow(other, kept["workflow"])
    assert workflow.id == kept["workflow"]
    assert "admin" in await AccessControl(db).roles_of(other, "ada")
    assert (await security.audit_log.verify(other)).ok
    assert all(e.entry is not None for e in await security.audit_log.entries(other, 0, 1000))


async def test_erasing_again_answers_the_same_report_and_destroys_nothing_more(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = await deleted_tenant(db, new_tenant)
    lifecycle = LifecycleManager(db)
    first = await lifecycle.erase_tenant(tenant)
    again = await lifecycle.erase_tenant(tenant)
    assert first.erased
    assert again.erased, again.as_dict()
    assert again.rows_deleted == 0
    assert again.keys.destroyed_now == 0
    assert again.keys.keys == first.keys.keys  # no tombstone added
    assert again.audit.size == first.audit.size
    assert again.audit.root_hash == first.audit.root_hash
    assert again.audit.probe_opened_before is False
    assert [(t.table, t.left) for t in again.tables] == [(t.table, t.left) for t in first.tables]


async def test_erasure_is_refused_for_the_platform_an_undeleted_or_unknown_tenant(
    db: Database, new_tenant: NewTenant
) -> None:
    lifecycle = LifecycleManager(db)
    with pytest.raises(Conflict, match="never erased"):
        await lifecycle.erase_tenant(PLATFORM_TENANT)
    active = (await new_tenant("active")).id
    await TenantSettings(active, db).set("ui.theme", "dark")
    with pytest.raises(Conflict, match="is active: set its status to deleted first"):
        await lifecycle.erase_tenant(active)
    await TenantRegistry(db).update_status(active, TenantStatus.SUSPENDED)
    with pytest.raises(Conflict, match="is suspended"):
        await lifecycle.erase_tenant(active)
    assert (await TenantSettings(active, db).get("ui.theme")).value == "dark"  # nothing changed
    assert await Keyring(db).encrypt(active, b"x", purpose="p", record_id="r")
    with pytest.raises(TenantNotFound):
        await lifecycle.erase_tenant(f"none-{uuid.uuid4().hex[:8]}")


async def test_erasure_takes_turns_with_the_audit_queues_integration(
    db: Database, new_tenant: NewTenant
) -> None:
    """Entries still queued when the erasure starts, integrated (in the background and by two
    callers) while it deletes: no deadlock, none lost."""
    tenant = (await new_tenant("race")).id
    trail = trail_for(db)
    await trail.prepare(tenant)
    held, release = asyncio.Event(), asyncio.Event()

    async def hold_the_tree() -> None:  # keeps every integration waiting, for now
        with tenant_scope(tenant):
            async with db.tenant_transaction(prologue=lock_statement(tenant)):
                held.set()
                await release.wait()

    holder = asyncio.create_task(hold_the_tree(), context=contextvars.Context())
    await held.wait()
    queued = 600
    points = next(t for t in tenant_tables() if t.name == "metric_points")
    for chunk in range(3):  # committed to the queue, in three transactions
        with tenant_scope(tenant):
            async with db.tenant_transaction() as conn:
                await insert_sample(conn, points, tenant, {})
                for i in range(queued // 3):
                    await trail.record(tenant, "test.change", f"thing:{chunk}.{i}", actor="ada")
    await TenantRegistry(db).update_status(tenant, TenantStatus.DELETED)
    assert await trail.outbox.backlog(tenant) == queued  # all still queued

    async def integrate() -> None:
        for _ in range(20):
            await trail.outbox.integrate(tenant)
            await asyncio.sleep(0)

    racing = asyncio.gather(LifecycleManager(db).erase_tenant(tenant), integrate(), integrate())
    await asyncio.sleep(0.5)
    release.set()
    await holder
    async with asyncio.timeout(120):
        report, *_ = await racing
    assert isinstance(report, ErasureReport)
    assert report.erased, report.as_dict()
    assert report.audit.queue_dropped == 0
    assert report.audit.size == queued  # every queued entry reached the tree
    assert await trail.outbox.backlog(tenant) == 0
    assert {t.table: t.deleted for t in report.tables}["metric_points"] == 3


async def test_erasure_drops_the_tenants_cache_entries_on_redis_too(
    db: Database, new_tenant: NewTenant
) -> None:
    redis = Redis.from_url(require_redis())
    cache = CacheManager(redis=redis)
    tenant = (await new_tenant("cached")).id
    other = (await new_tenant("cached")).id
    try:
        for who in (tenant, other):
            with tenant_scope(who):
                await cache.set("profile", {"name": "Nadia Vos"})
        await TenantRegistry(db).update_status(tenant, TenantStatus.DELETED)
        report = await LifecycleManager(db, cache=cache).erase_tenant(tenant)
        assert report.erased
        assert report.cache_entries_dropped >= 1
        fresh = CacheManager(redis=redis)  # another node: L2 alone
        with tenant_scope(tenant):
            assert await fresh.get("profile") is None
            assert await cache.get("profile") is None
        with tenant_scope(other):
            assert await fresh.get("profile") == {"name": "Nadia Vos"}
    finally:
        await cache.close()
        await redis.aclose()


async def test_erasure_waits_for_the_audit_trees_lock(db: Database, new_tenant: NewTenant) -> None:
    """While an integration holds the tenant's tree lock, the erasure deletes nothing."""
    tenant = await deleted_tenant(db, new_tenant)
    records = (await rows_of(db, tenant))["metadata_records"]
    with tenant_scope(tenant):
        async with db.tenant_transaction(prologue=lock_statement(tenant)) as conn:
            erasure = LifecycleManager(db).erase_tenant(tenant)
            erasing = asyncio.create_task(erasure, context=contextvars.Context())
            await asyncio.sleep(1.0)
            assert not erasing.done()
            count = "SELECT count(*) FROM tenantry.metadata_records"
            assert await conn.scalar(text(count)) >= records > 0  # nothing deleted yet
    report = await asyncio.wait_for(erasing, 60)
    assert report.erased, report.as_dict()
    with pytest.raises(TenantContextError), tenant_scope(tenant):
        await LifecycleManager(db).erase_tenant(tenant)

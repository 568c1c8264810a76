"""The retention job: each tenant's old finished workflows, security events and delivered alert
messages deleted by its tier's days; recent ones, unfinished ones, queued messages and other
tiers' longer-kept data untouched; each deletion audited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tenantry.audit.trail import trail_for
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.lifecycle import load_policies
from tenantry.lifecycle.retention import RetentionJob
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

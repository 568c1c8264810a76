"""Where the threat analysis reads when the database is routed through a ConnectionManager.

A report may read a replica (its events may be a moment stale); the watch reads the primary, and
a tenant whose analysis its full bulkhead lane refused is analysed again in the next round.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from tenantry.config import Settings
from tenantry.connections import ConnectionManager, PoolLimits
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.threats import SecurityEvents, ThreatAnalyzer, ThreatWatch
from tests.conftest import NewTenant


@pytest.fixture
async def routed(
    settings: Settings, runtime: DatabaseRuntime
) -> AsyncIterator[tuple[Database, ConnectionManager]]:
    """A database of its own routed through a manager with one replica, a tenant's cap of 3 (an
    analysis reads on up to 3 connections at once)."""
    database = runtime.open_database()
    manager = ConnectionManager(
        settings,
        primary=database,
        replicas=[runtime.app_url],
        pool_limits=PoolLimits(6, 6),
        bulkhead_timeout=0.05,
        health_interval=0,
        redis_url="",
    )
    async with manager:
        database.route_through(manager)
        yield database, manager
    await database.dispose()


def calls(manager: ConnectionManager) -> dict[str, int]:
    return {m.name: m.stats.calls for m in manager.members}


async def test_a_report_reads_the_replica_and_a_fresh_one_the_primary(
    routed: tuple[Database, ConnectionManager], new_tenant: NewTenant
) -> None:
    database, manager = routed
    tenant = (await new_tenant()).id
    await SecurityEvents(database).record(tenant, "failed_validation", principal_id="mila")
    analyzer = ThreatAnalyzer(database)
    now = datetime.now(UTC)  # one window: the second analysis reuses the first's baseline
    before = calls(manager)
    report = await analyzer.analyze(tenant, now=now)
    assert report.tenant_id == tenant
    after = calls(manager)
    assert after["postgres"] == before["postgres"]
    assert after["postgres-replica-1"] - before["postgres-replica-1"] == 3  # users, IPs, baseline
    await analyzer.analyze(tenant, now=now, fresh=True)
    fresh = calls(manager)
    assert fresh["postgres"] - after["postgres"] == 2  # users and IPs; the baseline is kept
    assert fresh["postgres-replica-1"] == after["postgres-replica-1"]


async def test_the_watch_keeps_a_tenant_whose_lane_is_full_for_the_next_round(
    routed: tuple[Database, ConnectionManager], new_tenant: NewTenant
) -> None:
    database, manager = routed
    tenant = (await new_tenant()).id
    watch = ThreatWatch(ThreatAnalyzer(database), interval=3600)
    watch.notice(tenant)
    lanes = manager.primary_member.pool.bulkhead  # type: ignore[union-attr]
    for _ in range(lanes.cap(tenant)):  # the tenant's calls in flight (a flood)
        await lanes.acquire(tenant)
    try:
        assert await watch.run_once() == []  # not analysed: refused (BulkheadFull)
        assert tenant in watch.noticed  # but not dropped
    finally:
        for _ in range(lanes.cap(tenant)):
            lanes.release(tenant)
    assert await watch.run_once() == [tenant]
    assert watch.noticed == frozenset()

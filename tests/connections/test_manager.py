"""The ConnectionManager on the embedded PostgreSQL: routing, tenant scope, bulkheads, lookup."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tenantry.config import Settings
from tenantry.connections import ConnectionManager, PoolLimits
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import BulkheadFull, ConfigError, TenantContextError
from tests.conftest import NewTenant

SETTING = "select current_setting('tenantry.tenant_id', true)"


def manager_for(settings: Settings, db: Database, **options: object) -> ConnectionManager:
    knobs: dict[str, object] = {"health_interval": 0, "redis_url": "", **options}
    return ConnectionManager(settings, primary=db, **knobs)  # type: ignore[arg-type]


async def test_without_replicas_everything_goes_to_the_primary(
    settings: Settings, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    async with manager_for(settings, db) as manager:
        with tenant_scope(tenant):
            async with manager.tenant_transaction() as conn:
                await conn.execute(
                    text(
                        "insert into tenantry.tenant_settings (tenant_id, key, value)"
                        " values (:t, 'conn.k', '1'::jsonb)"
                    ),
                    {"t": tenant},
                )
            async with manager.tenant_read_transaction() as conn:
                assert await conn.scalar(text(SETTING)) == tenant
                keys = await conn.scalars(text("select key from tenantry.tenant_settings"))
                assert list(keys) == ["conn.k"]  # RLS: only this tenant's rows
            read = await manager.run_read(lambda c: c.scalar(text(SETTING)), tenant_scoped=True)
            assert read == tenant
        async with manager.read_transaction() as conn:
            assert await conn.scalar(text(SETTING)) in (None, "")  # no tenant context
        primary = manager.member("postgres")
        assert primary.stats.calls == 4
        assert primary.stats.in_flight == 0
        health = manager.health()
        assert health.status == "ok"
        assert [b.name for b in health.backends] == ["postgres"]


async def test_tenant_reads_need_a_tenant(settings: Settings, db: Database) -> None:
    async with manager_for(settings, db) as manager:
        with pytest.raises(TenantContextError):
            async with manager.tenant_read_transaction():
                pass
        with pytest.raises(TenantContextError):
            await manager.run_read(lambda c: c.scalar(text("select 1")), tenant_scoped=True)
        with pytest.raises(TenantContextError):
            async with manager.tenant_transaction():
                pass


async def test_replicas_serve_the_reads_and_the_primary_the_writes(
    settings: Settings, runtime: DatabaseRuntime, db: Database
) -> None:
    manager = manager_for(
        settings, db, replicas=[runtime.app_url, runtime.app_url], balancer="least_connections"
    )
    async with manager:
        for _ in range(6):
            async with manager.read_transaction() as conn:
                await conn.execute(text("select 1"))
        async with manager.transaction() as conn:
            await conn.execute(text("select 1"))
        calls = {m.name: m.stats.calls for m in manager.members}
        assert calls == {"postgres": 1, "postgres-replica-1": 3, "postgres-replica-2": 3}
    assert manager.replicas[0].driver_pool() == {
        "checked_out": 0,
        "idle": 0,
        "size": 5,
        "overflow": 0,
        "waiting": 0,
    }  # fmt: skip  (the manager disposed the replica pools it opened)


async def test_a_tenant_over_its_share_is_refused_and_another_is_not(
    settings: Settings, db: Database
) -> None:
    manager = manager_for(settings, db, pool_limits=PoolLimits(2, 2), bulkhead_timeout=0.05)
    async with manager:
        held = asyncio.Event()
        done = asyncio.Event()

        async def hold(tenant: str) -> None:
            with tenant_scope(tenant):
                async with manager.tenant_read_transaction():
                    held.set()
                    await done.wait()

        holder = asyncio.create_task(hold("t-noisy"))
        await held.wait()
        with tenant_scope("t-noisy"), pytest.raises(BulkheadFull):
            async with manager.tenant_read_transaction():
                pass
        with tenant_scope("t-quiet"):
            async with manager.tenant_read_transaction() as conn:
                assert await conn.scalar(text("select 1")) == 1
        done.set()
        await holder
        bulkhead = manager.primary_member.pool.bulkhead  # type: ignore[union-attr]
        assert bulkhead.snapshot()["rejected"] == 1


async def test_lookup_and_configuration_errors(settings: Settings, db: Database) -> None:
    manager = manager_for(settings, db, http_endpoints={"slack": ["https://slack.example"]})
    assert manager.breaker("postgres").name == "postgres"
    assert manager.breaker("slack/1").state == "closed"
    assert manager.http("slack").members[0].base_url == "https://slack.example"
    with pytest.raises(ConfigError, match="no backend named 'nope'"):
        manager.breaker("nope")
    with pytest.raises(ConfigError, match="no HTTP endpoint group"):
        manager.http("nope")
    with pytest.raises(ConfigError, match="tenant_share"):
        manager_for(settings, db, tenant_share=0)
    with pytest.raises(ConfigError, match="unknown balancer"):
        manager_for(settings, db, balancer="fastest")
    await manager.close()
    await manager.close()  # idempotent


async def test_the_health_loop_runs_and_stops(settings: Settings, db: Database) -> None:
    async with manager_for(settings, db, health_interval=0.02) as manager:
        await asyncio.sleep(0.1)
        assert manager.member("postgres").health.checks >= 2
    task = manager._health_task  # the test checks that the loop ended
    assert task is not None
    assert task.done()

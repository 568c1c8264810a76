"""Background loads (stale-while-refresh, prefetch) run in a context of their own (issue 12, 15).

Before, they copied the caller's context, its open transaction included: a refresh started inside
a transaction joined it after it had committed, and failed with InterfaceError.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tenantry.cache import CacheManager
from tenantry.context import current_tenant, tenant_scope
from tenantry.db.engine import Database
from tests.conftest import NewTenant


async def test_a_refresh_started_in_a_transaction_outlives_it(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    cache = CacheManager(l1_bytes=1024 * 1024)
    loads: list[tuple[int, str | None]] = []
    done = asyncio.Event()

    async def loader() -> int:
        async with db.tenant_transaction() as conn:  # a transaction of its own
            value = int((await conn.execute(text("select 41 + 1"))).scalar_one())
        loads.append((value, current_tenant()))
        if len(loads) == 2:
            done.set()
        return value

    with tenant_scope(tenant):
        assert await cache.get_or_set("k", loader, ttl=0.05, stale_ttl=60) == 42
        await asyncio.sleep(0.06)  # past its TTL, within its stale window
        async with db.tenant_transaction():  # the caller's transaction, over when the load runs
            assert await cache.get_or_set("k", loader, ttl=0.05, stale_ttl=60) == 42
    await asyncio.wait_for(done.wait(), 5)
    assert loads == [(42, tenant), (42, tenant)]  # the refresh ran, in the tenant's scope
    assert cache.stats(tenant).load_errors == 0
    await cache.close()

"""Two tenants, one hammering the connections: the other's latency stays within a bound.

The replica's pool has 4 connections. Tenant A runs 40 concurrent readers, each holding a
connection for 30 ms (``pg_sleep(0.03)``), in a loop; tenant B meanwhile makes 20 short reads
one after another (5 in the control). With the default bulkhead (a tenant may hold half of the
pool: 2 connections) A's readers queue in A's own lane and B always finds a free connection.

The bound: **B's p95 latency stays under 100 ms** (B's reads take about 1-3 ms alone here;
100 ms is three of A's queries, room for a loaded machine). The control run sends A's readers
without a tenant, which bypasses the bulkhead: all 40 then queue for the pool's 4 connections
and B queues behind them (about 40 x 30 ms / 4 = 300 ms), so its p95 is far above the bound.
(Even at tenant_share=1 B would wait at most one of A's queries: A's lane still lets only 4
readers at a time reach the pool's FIFO queue, where B is served first.)
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text

from tenantry.connections import ConnectionManager, PoolLimits
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tests.conftest import NewTenant

BOUND_P95 = 0.100
A_READERS = 40


async def run(
    runtime: DatabaseRuntime, db: Database, a: str, b: str, *, bulkhead: bool
) -> list[float]:
    """B's read latencies while A hammers; A's lane never holds more than its cap."""
    manager = ConnectionManager(
        runtime.settings,
        primary=db,
        replicas=[runtime.app_url],
        pool_limits=PoolLimits(4, 4),
        bulkhead_timeout=30,
        acquire_timeout=30,
        health_interval=0,
        redis_url="",
    )
    replica = manager.replicas[0]
    cap = replica.pool.bulkhead.max_per_tenant
    stop = asyncio.Event()

    async def hammer() -> None:
        while not stop.is_set():
            if bulkhead:
                with tenant_scope(a):
                    async with manager.tenant_read_transaction() as conn:
                        await conn.execute(text("select pg_sleep(0.03)"))
            else:
                async with manager.read_transaction() as conn:
                    await conn.execute(text("select pg_sleep(0.03)"))

    latencies: list[float] = []
    try:
        async with manager:
            noisy = [asyncio.create_task(hammer()) for _ in range(A_READERS)]
            await asyncio.sleep(0.2)  # A has filled its lane (or the whole pool)
            assert replica.pool.gate.in_use == (cap if bulkhead else 4)
            with tenant_scope(b):
                for _ in range(20 if bulkhead else 5):
                    started = time.perf_counter()
                    async with manager.tenant_read_transaction() as conn:
                        assert await conn.scalar(text("select 1")) == 1
                    latencies.append(time.perf_counter() - started)
                    assert replica.pool.bulkhead.in_use(a) <= cap
            stop.set()
            await asyncio.gather(*noisy)
    finally:
        stop.set()
    assert replica.pool.gate.in_use == 0
    assert replica.driver_pool()["checked_out"] == 0
    return sorted(latencies)


def p95(values: list[float]) -> float:
    return values[int(0.95 * (len(values) - 1))]


async def test_a_noisy_tenant_cannot_take_the_others_connections(
    runtime: DatabaseRuntime, db: Database, new_tenant: NewTenant
) -> None:
    a, b = (await new_tenant("noisy")).id, (await new_tenant("quiet")).id
    with_bulkhead = await run(runtime, db, a, b, bulkhead=True)
    without = await run(runtime, db, a, b, bulkhead=False)
    assert p95(with_bulkhead) < BOUND_P95, f"B's p95 {p95(with_bulkhead) * 1000:.1f} ms"
    assert p95(without) > BOUND_P95, "the control run should have made B queue behind A"
    quiet, noisy = p95(with_bulkhead) * 1000, p95(without) * 1000
    print(f"B's p95: {quiet:.1f} ms; without the bulkhead {noisy:.0f} ms")

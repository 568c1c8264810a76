"""Two tenants, one hammering the connections: the other is served without queueing behind it.

The replica's pool has 4 connections. Tenant A runs 40 concurrent readers, each holding a
connection for 30 ms (``pg_sleep(0.03)``), in a loop; tenant B meanwhile makes 20 short reads
one after another (5 in the control). With the default bulkhead (a tenant may hold half of the
pool: 2 connections) A's readers queue in A's own lane, so the pool always has a free connection
and none of B's reads ever waits at the pool's gate. The control run sends A's readers without a
tenant, which bypasses the bulkhead: all 40 then queue at the pool's 4 connections, and every
one of B's reads queues behind them (and is still served: the gate is FIFO).

How long B's reads take in each case is a benchmark, not a test (``benchmarks/
bench_noisy_tenant.py``: the quiet tenant's read with bulkheads, without them, and with no noisy
tenant, in one run). Here every wait has a generous deadline (10 s) instead of a bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from sqlalchemy import text

from tenantry.connections import ConnectionManager, PoolLimits
from tenantry.context import current_tenant, tenant_scope
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tests.conftest import NewTenant

A_READERS = 40
#: Generous: a deadline for what must happen, not a bound on how fast.
DEADLINE = 10.0


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {DEADLINE:g} s"
        await asyncio.sleep(0.01)


async def run(
    runtime: DatabaseRuntime,
    db: Database,
    a: str,
    b: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    bulkhead: bool,
) -> tuple[int, int]:
    """(B's reads, how many of them waited at the pool's gate) while A hammers."""
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
    gate, lanes = replica.pool.gate, replica.pool.bulkhead
    cap = lanes.max_per_tenant
    assert cap < gate.limit
    stop = asyncio.Event()

    # The guard calls gate.acquire() only when no connection is free (try_acquire failed).
    queued_for: list[str | None] = []
    acquire = gate.acquire

    async def recording_acquire() -> float:
        queued_for.append(current_tenant())
        return await acquire()

    monkeypatch.setattr(gate, "acquire", recording_acquire)

    async def hammer() -> None:
        while not stop.is_set():
            if bulkhead:
                with tenant_scope(a):
                    async with manager.tenant_read_transaction() as conn:
                        await conn.execute(text("select pg_sleep(0.03)"))
            else:
                async with manager.read_transaction() as conn:
                    await conn.execute(text("select pg_sleep(0.03)"))

    reads = 20 if bulkhead else 5
    try:
        async with manager:
            noisy = [asyncio.create_task(hammer()) for _ in range(A_READERS)]
            if bulkhead:  # A holds its lane's connections, the rest of its readers wait in it
                await wait_until(
                    lambda: gate.in_use == cap and lanes.snapshot()["waiting"] != 0, "A's lane full"
                )
            else:  # A holds the whole pool, the rest of its readers wait at the gate
                await wait_until(lambda: gate.in_use == 4 and gate.waiting > 0, "the pool full")
            with tenant_scope(b):
                async with asyncio.timeout(DEADLINE):
                    for _ in range(reads):
                        async with manager.tenant_read_transaction() as conn:
                            assert await conn.scalar(text("select 1")) == 1
                        assert lanes.in_use(a) <= cap
            stop.set()
            async with asyncio.timeout(DEADLINE):
                await asyncio.gather(*noisy)
    finally:
        stop.set()
    assert gate.in_use == 0
    assert replica.driver_pool()["checked_out"] == 0
    return reads, queued_for.count(b)


async def test_a_noisy_tenant_cannot_take_the_others_connections(
    runtime: DatabaseRuntime,
    db: Database,
    new_tenant: NewTenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = (await new_tenant("noisy")).id, (await new_tenant("quiet")).id
    reads, queued = await run(runtime, db, a, b, monkeypatch, bulkhead=True)
    assert queued == 0, f"{queued} of B's {reads} reads waited for a connection behind A"
    reads, queued = await run(runtime, db, a, b, monkeypatch, bulkhead=False)
    assert queued == reads, "the control run should have made B queue behind A"

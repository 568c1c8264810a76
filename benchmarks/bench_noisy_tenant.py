"""A noisy tenant and a quiet one on one replica pool: the quiet tenant's read latency.

The figures ``tests/connections/test_noisy_tenant.py`` used to assert (the quiet tenant's p95
under 100 ms with bulkheads, far above it without) are measured here, in one run:

- ``noisy tenant: quiet tenant's read, bulkheads on``: a ``ConnectionManager`` whose replica pool
  has 4 connections (``PoolLimits(4, 4)``, the default ``tenant_share``: a tenant holds at most
  2). Tenant A runs 40 readers in a loop, each holding a connection for 30 ms
  (``select pg_sleep(0.03)`` in ``tenant_read_transaction``); the timed call is one
  ``select 1`` of tenant B in ``tenant_read_transaction``.
- ``noisy tenant: quiet tenant's read, bulkheads off``: a second manager of the same shape whose
  40 readers send A's queries without a tenant (``read_transaction``), so no lane holds them: all
  queue at the pool's 4 connections, and B behind them (about 40 x 30 ms / 4 = 300 ms).
- ``noisy tenant: quiet tenant's read, no noisy tenant on its pool``: a third manager of the same
  shape that only B uses.

The three managers run at the same time, so the event loop and the server carry both noisy
loads during every row. Peers: "on" against the pool without the noisy tenant (what is left of
the noise with bulkheads), "off" against "on" (what the bulkheads save). The rows are slow
(the "off" read takes ~300 ms), so the module runs 100 iterations per row (20 with
``--quick``).
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import text

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Operation, Plan, Row, run_cases
from tenantry.connections import ConnectionManager, PoolLimits
from tenantry.context import tenant_scope
from tenantry.tenants import TenantRegistry

__all__ = ["BENCHMARK"]

ON = "noisy tenant: quiet tenant's read, bulkheads on"
OFF = "noisy tenant: quiet tenant's read, bulkheads off"
ALONE = "noisy tenant: quiet tenant's read, no noisy tenant on its pool"
OPERATIONS = (ON, OFF, ALONE)

NOISY, QUIET = "bench-noisy", "bench-quiet"
READERS = 40
HOLD = "select pg_sleep(0.03)"


async def run(env: Environment, plan: Plan) -> list[Row]:
    registry = TenantRegistry(env.db)
    await registry.create(NOISY, "Noisy tenant bench")
    await registry.create(QUIET, "Quiet tenant bench")

    def manager() -> ConnectionManager:
        return ConnectionManager(
            env.runtime.settings,
            primary=env.db,
            replicas=[env.runtime.app_url],
            pool_limits=PoolLimits(4, 4),
            bulkhead_timeout=60,
            acquire_timeout=60,
            health_interval=0,
            redis_url="",
        )

    stop = asyncio.Event()

    async def hammer(target: ConnectionManager, *, in_lane: bool) -> None:
        while not stop.is_set():
            if in_lane:
                with tenant_scope(NOISY):
                    async with target.tenant_read_transaction() as conn:
                        await conn.execute(text(HOLD))
            else:
                async with target.read_transaction() as conn:
                    await conn.execute(text(HOLD))

    def quiet_read(target: ConnectionManager) -> Operation:
        async def read() -> None:
            with tenant_scope(QUIET):
                async with target.tenant_read_transaction() as conn:
                    await conn.scalar(text("select 1"))

        return read

    async with manager() as on, manager() as off, manager() as alone:
        noise = [
            *(asyncio.create_task(hammer(on, in_lane=True)) for _ in range(READERS)),
            *(asyncio.create_task(hammer(off, in_lane=False)) for _ in range(READERS)),
        ]
        try:
            await asyncio.sleep(0.5)  # the noisy readers fill A's lane (on) and the pool (off)
            on_gate, off_gate = on.replicas[0].pool.gate, off.replicas[0].pool.gate
            cap = on.replicas[0].pool.bulkhead.max_per_tenant
            if on_gate.in_use != cap or off_gate.in_use != 4 or not off_gate.waiting:
                raise AssertionError(
                    f"noise not in place: on {on_gate.snapshot()}, off {off_gate.snapshot()}"
                )
            slow = plan.capped(
                iterations=100 if plan.iterations >= 1000 else 20, warmup=3, memory_iterations=3
            )
            cases = [
                Case(ON, quiet_read(on), peer=ALONE),
                Case(OFF, quiet_read(off), peer=ON),
                Case(ALONE, quiet_read(alone)),
            ]
            return await run_cases(cases, slow, module="noisy tenant")
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.gather(*noise)


BENCHMARK = Benchmark(name="noisy tenant", operations=OPERATIONS, run=run)

"""10,000 operations under injected faults leave every pool at its baseline.

40 workers run a seeded mix of operations on every kind of backend: reads on two replicas (the
PostgreSQL server behind TCP proxies), tenant reads, ``run_read``, writes on the primary, Redis
commands on a private redis-server, and HTTP requests to a group whose transport fails at random.
Meanwhile a chaos task refuses and re-accepts connections to one replica, resets all open
connections of the other, adds latency, and kills and restarts Redis. 5 % of the operations
are cancelled at a random moment (a timeout), 2 % fail in the caller's own code.

Afterwards, with the faults healed: no pool slot, bulkhead lane, in-flight count, SQLAlchemy
checkout or redis-py connection is still held. Errors are allowed, but only tenantry's own, the
callers' own and the timeouts; nothing else may escape.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx
import pytest
from sqlalchemy import text

from tenantry.connections import BreakerConfig, ConnectionManager, PoolLimits, RetryPolicy
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import TenantryError
from tests.connections.conftest import ProxyFactory, through
from tests.connections.proxy import RedisProcess

pytestmark = [pytest.mark.server, pytest.mark.redis]

OPERATIONS = 10_000
WORKERS = 40
TENANTS = [f"leak-{n}" for n in range(5)]


class CallerError(Exception):
    """An error of the caller's own code, inside a transaction."""


def usage(manager: ConnectionManager) -> dict[str, int]:
    """Everything that is held while a call runs, by backend; all zero when idle."""
    held: Counter[str] = Counter()
    for pool in manager.pools:
        snap = pool.bulkhead.snapshot()
        held[f"{pool.name} gate"] = pool.gate.in_use + pool.gate.waiting
        held[f"{pool.name} bulkhead"] = int(snap["in_use"]) + int(snap["waiting"])  # type: ignore[call-overload]
        held[f"{pool.name} lanes"] = int(snap["tenants_active"])  # type: ignore[call-overload]
    for member in manager.members:
        held[f"{member.name} in flight"] = member.stats.in_flight
        driver = getattr(member, "driver_pool", None)
        if driver is not None:
            held[f"{member.name} checked out"] = driver()["checked_out"]
    return dict(held)


async def test_ten_thousand_faulty_operations_leak_nothing(
    pg_server: DatabaseRuntime,
    primary: Database,
    proxies: ProxyFactory,
    redis_process: RedisProcess,
) -> None:
    rng = random.Random(20261121)
    p1, p2 = await proxies(), await proxies()

    async def flaky_http(request: httpx.Request) -> httpx.Response:
        roll = rng.random()
        if roll < 0.10:
            raise httpx.ConnectError("refused", request=request)
        if roll < 0.15:
            return httpx.Response(503)
        await asyncio.sleep(0.001 if roll < 0.5 else 0)
        return httpx.Response(200, text="ok")

    manager = ConnectionManager(
        pg_server.settings,
        primary=primary,
        replicas={"r1": through(pg_server.app_url, p1), "r2": through(pg_server.app_url, p2)},
        redis_url=redis_process.url,
        http_endpoints={"hooks": ["http://a", "http://b"]},
        http_transport=httpx.MockTransport(flaky_http),
        pool_limits=PoolLimits(2, 6, 4),
        breaker=BreakerConfig(window_size=20, minimum_calls=5, open_duration=0.2),
        retry=RetryPolicy(base_delay=0.002, max_delay=0.01),
        resize_interval=0.05,
        bulkhead_timeout=0.5,
        acquire_timeout=1.0,
        open_timeout=0.5,
        health_interval=0,  # the test runs the checks, so that it can stop them to measure
        health_timeout=0.3,
        redis_socket_timeout=0.3,
        seed=7,
    )
    outcomes: Counter[str] = Counter()
    remaining = iter(range(OPERATIONS))

    async def operation(kind: float, tenant: str) -> None:
        if kind < 0.35:
            async with manager.read_transaction() as conn:
                await conn.execute(text("select 1"))
                if rng.random() < 0.02:
                    raise CallerError
        elif kind < 0.45:
            with tenant_scope(tenant):
                async with manager.tenant_read_transaction() as conn:
                    await conn.execute(text("select 1"))
        elif kind < 0.55:
            await manager.run_read(lambda c: c.execute(text("select 1")))
        elif kind < 0.65:
            with tenant_scope(tenant):
                async with manager.tenant_transaction() as conn:
                    await conn.execute(text("select 1"))
        elif kind < 0.85:
            await manager.redis_call(lambda r: r.incr(f"leak:{tenant}"), tenant=tenant)
        else:
            await manager.http("hooks").request("GET", "/", tenant=tenant)

    async def worker() -> None:
        for _ in remaining:
            kind, tenant = rng.random(), rng.choice(TENANTS)
            try:
                if rng.random() < 0.05:
                    async with asyncio.timeout(rng.uniform(0, 0.004)):
                        await operation(kind, tenant)
                else:
                    await operation(kind, tenant)
                outcomes["ok"] += 1
            except (TenantryError, CallerError, TimeoutError) as exc:
                outcomes[type(exc).__name__] += 1

    async def chaos() -> None:
        for step in range(10_000):
            await asyncio.sleep(0.05)
            if step % 4 == 0:
                await (p1.refuse() if step % 8 == 0 else p1.accept())
            if step % 5 == 0:
                p2.drop()
            p1.latency = 0.003 if step % 7 == 0 else 0.0
            if step % 20 == 5:
                redis_process.kill()
            elif step % 20 == 10:
                await redis_process.start()

    async def health_checks() -> None:
        while True:
            await manager.check_health()
            await asyncio.sleep(0.05)

    async with manager:
        for _ in range(5):
            async with manager.read_transaction() as conn:
                await conn.execute(text("select 1"))
        baseline = usage(manager)
        assert set(baseline.values()) == {0}
        background = [asyncio.create_task(chaos()), asyncio.create_task(health_checks())]
        try:
            await asyncio.gather(*(worker() for _ in range(WORKERS)))
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
        await p1.accept()
        p1.latency = 0
        assert sum(outcomes.values()) == OPERATIONS
        # A cancelled transaction returns its connection from a shielded close() that finishes
        # in the background (db/engine.py): give those a moment, then nothing may be held.
        waited_ms = 0
        while usage(manager) != baseline and waited_ms < 1000:
            await asyncio.sleep(0.01)
            waited_ms += 10
        assert usage(manager) == baseline, usage(manager)
        print(f"settled after {waited_ms} ms")
        failed = OPERATIONS - outcomes["ok"]
        assert outcomes["ok"] > OPERATIONS // 2, outcomes
        assert failed > 100, outcomes  # the faults did happen
        assert manager.breaker("r1").times_opened >= 1
        assert manager.breaker("redis").times_opened >= 1
        replicas_open = p1.open_connections + p2.open_connections
        assert replicas_open <= 2 * 6  # never more connections than the pools' maximum
    print(dict(outcomes))

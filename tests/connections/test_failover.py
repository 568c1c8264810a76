"""Read failover on real PostgreSQL: replicas behind TCP proxies that refuse, drop and lag.

Every replica is the test database on the PostgreSQL server, reached through its own proxy, so a
fault is a real one (the kernel refuses the connection; open sockets are reset) and the proxy's
counters show where connections really went.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from tenantry.connections import BreakerConfig, BreakerState, ConnectionManager
from tenantry.connections.backends import HealthState
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import CircuitOpen, DatabaseUnavailable
from tests.connections.conftest import ProxyFactory, through

pytestmark = pytest.mark.server

FAST = BreakerConfig(window_size=10, minimum_calls=4, open_duration=0.3, half_open_max_calls=2)


def manager_for(
    runtime: DatabaseRuntime, primary: Database, **options: object
) -> ConnectionManager:
    settings: dict[str, object] = {
        "breaker": FAST,
        "health_interval": 0.1,
        "health_timeout": 0.5,
        "open_timeout": 1.0,
        "redis_url": "",
        "seed": 1,
        **options,
    }
    return ConnectionManager(runtime.settings, primary=primary, **settings)  # type: ignore[arg-type]


async def read(manager: ConnectionManager) -> int:
    async with manager.read_transaction() as conn:
        value = await conn.scalar(text("select 1"))
    assert value == 1
    return int(value)


async def eventually(
    condition: object, *, seconds: float = 5.0, manager: ConnectionManager
) -> None:
    """Read (to give probes traffic) until ``condition()`` holds."""
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await read(manager)
        await asyncio.sleep(0.02)


@pytest.fixture
async def two_replicas(
    pg_server: DatabaseRuntime, primary: Database, proxies: ProxyFactory
) -> AsyncIterator[tuple[ConnectionManager, list[object]]]:
    p1, p2 = await proxies(), await proxies()
    url = pg_server.app_url
    manager = manager_for(
        pg_server, primary, replicas={"r1": through(url, p1), "r2": through(url, p2)},
        balancer="round_robin",
    )  # fmt: skip
    await manager.start()
    yield manager, [p1, p2]
    await manager.close()


async def test_a_replica_that_refuses_connections(
    two_replicas: tuple[ConnectionManager, list[object]],
) -> None:
    manager, (p1, p2) = two_replicas
    r1, r2 = manager.replicas
    for _ in range(20):
        await read(manager)
    assert r1.stats.calls == r2.stats.calls == 10  # round robin
    assert p1.accepted >= 1
    assert p2.accepted >= 1

    await p1.refuse()  # type: ignore[attr-defined]
    p1.drop()  # type: ignore[attr-defined]  (the pooled connections die as well)
    for _ in range(30):
        await read(manager)  # every read succeeds: failover happens inside the manager
    assert r1.breaker.snapshot()["times_opened"] >= 1
    assert r1.stats.failures >= FAST.minimum_calls
    served_before = r2.stats.calls
    await read(manager)
    assert r2.stats.calls == served_before + 1  # r1 is skipped, not tried and failed over
    await asyncio.sleep(0.35)
    assert r1.health.state is HealthState.UNHEALTHY  # the health checks agree
    assert manager.health().status == "degraded"

    await p1.accept()  # the replica heals

    def healed() -> bool:
        return r1.health.healthy and r1.breaker.state is BreakerState.CLOSED

    await eventually(healed, manager=manager)
    calls = r1.stats.calls
    for _ in range(10):
        await read(manager)
    assert r1.stats.calls >= calls + 4  # reads come back to it
    assert manager.health().status == "ok"


async def test_reads_fall_back_to_the_primary(
    pg_server: DatabaseRuntime, primary: Database, proxies: ProxyFactory
) -> None:
    proxy = await proxies()
    manager = manager_for(pg_server, primary, replicas=[through(pg_server.app_url, proxy)])
    async with manager:
        await proxy.refuse()
        for _ in range(12):
            await read(manager)
        replica, main = manager.replicas[0], manager.primary_member
        assert main is not None
        assert main.stats.calls == 12
        assert replica.breaker.state is BreakerState.OPEN
        assert replica.stats.calls == FAST.minimum_calls  # tried until its breaker opened
        await proxy.accept()
        await eventually(lambda: replica.breaker.state is BreakerState.CLOSED, manager=manager)


async def test_a_replica_that_stops_answering_is_left_within_the_open_timeout(
    pg_server: DatabaseRuntime, primary: Database, proxies: ProxyFactory
) -> None:
    """A replica whose host stops answering (no reset: every byte held for an hour) is given up
    after ``open_timeout``, on the pooled connection (its ``BEGIN``) as on a new one (the
    connection's start-up), and the reads go to the primary. Without those bounds the reads
    would wait for the driver's own timeouts (a minute) or for ever; the deadline is generous."""
    proxy = await proxies()
    manager = manager_for(
        pg_server, primary, replicas=[through(pg_server.app_url, proxy)], open_timeout=0.2
    )
    async with manager, asyncio.timeout(30):
        replica, main = manager.replicas[0], manager.primary_member
        assert main is not None
        await read(manager)
        assert replica.stats.calls == 1  # a connection to the replica is pooled now
        proxy.latency = 3600.0
        for _ in range(3):
            await read(manager)
        assert replica.stats.failures >= 1
        assert main.stats.calls >= 3
        assert replica.stats.in_flight == 0
        await proxy.refuse()  # the host goes for good: closing the manager need not wait for
        proxy.drop()  # the driver's cancel requests and goodbyes to time out


async def test_run_read_survives_a_connection_dropped_mid_read(
    two_replicas: tuple[ConnectionManager, list[object]],
) -> None:
    manager, (p1, p2) = two_replicas

    async def slow(conn: object) -> str:
        await conn.execute(text("select pg_sleep(0.3)"))  # type: ignore[attr-defined]
        return "done"

    async def drop_soon() -> None:
        await asyncio.sleep(0.1)
        p1.drop()  # type: ignore[attr-defined]
        p2.drop()  # type: ignore[attr-defined]

    dropper = asyncio.create_task(drop_soon())
    assert await manager.run_read(slow) == "done"  # retried on another server
    await dropper
    failed = sum(r.stats.failures for r in manager.replicas)
    assert failed == 1
    with pytest.raises(DatabaseUnavailable):  # the same read in a plain read_transaction
        async with manager.read_transaction() as conn:
            asyncio.get_running_loop().call_later(0.1, p1.drop)  # type: ignore[attr-defined]
            asyncio.get_running_loop().call_later(0.1, p2.drop)  # type: ignore[attr-defined]
            await conn.execute(text("select pg_sleep(0.3)"))


async def test_p2c_moves_reads_away_from_a_slow_replica(
    pg_server: DatabaseRuntime, primary: Database, proxies: ProxyFactory
) -> None:
    slow, fast = await proxies(), await proxies()
    slow.latency = 0.01  # each chunk, both ways: ~20 ms a round trip more
    url = pg_server.app_url
    manager = manager_for(
        pg_server, primary, replicas=[through(url, slow), through(url, fast)],
        health_interval=0,
    )  # fmt: skip
    async with manager:

        async def reader() -> None:
            for _ in range(20):
                await read(manager)

        await asyncio.gather(*(reader() for _ in range(4)))
    r_slow, r_fast = manager.replicas
    assert r_slow.stats.calls + r_fast.stats.calls == 80
    assert r_fast.stats.calls > 3 * r_slow.stats.calls


async def test_a_failing_primary_opens_its_breaker_and_recovers(
    pg_server: DatabaseRuntime, proxies: ProxyFactory
) -> None:
    proxy = await proxies()
    database = Database(through(pg_server.app_url, proxy), pool_size=2, max_overflow=2)
    manager = manager_for(pg_server, database, health_interval=0)
    try:
        async with manager.transaction() as conn:
            assert await conn.scalar(text("select 1")) == 1
        await proxy.refuse()
        proxy.drop()
        with pytest.raises(DatabaseUnavailable):  # 3 attempts, with backoff, all refused
            async with manager.transaction():
                pass
        assert manager.breaker("postgres").state is BreakerState.OPEN  # 3 of 4 calls failed
        accepted = proxy.accepted
        with pytest.raises(CircuitOpen):  # fails fast: nothing is tried
            async with manager.transaction():
                pass
        assert manager.member("postgres").stats.calls == 4
        assert manager.breaker("postgres").snapshot()["rejected"] == 1
        assert proxy.accepted == accepted
        await proxy.accept()
        await asyncio.sleep(FAST.open_duration)
        for _ in range(FAST.half_open_max_calls):
            async with manager.transaction() as conn:
                await conn.execute(text("select 1"))
        assert manager.breaker("postgres").state is BreakerState.CLOSED
    finally:
        await manager.close()
        await database.dispose()

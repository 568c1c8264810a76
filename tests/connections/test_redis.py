"""Redis through the manager: the shared test server, and a private one that gets killed."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tenantry.config import Settings
from tenantry.connections import BreakerConfig, BreakerState, ConnectionManager, PoolLimits
from tenantry.db.engine import Database
from tenantry.errors import BackendUnavailable, CircuitOpen
from tests.connections.proxy import RedisProcess

pytestmark = pytest.mark.redis

FAST = BreakerConfig(window_size=10, minimum_calls=4, open_duration=0.3, half_open_max_calls=1)


def manager_for(settings: Settings, db: Database, url: str, **options: object) -> ConnectionManager:
    knobs: dict[str, object] = {
        "breaker": FAST,
        "health_interval": 0.1,
        "health_timeout": 0.5,
        "redis_socket_timeout": 0.5,
        "pool_limits": PoolLimits(2, 8),
        **options,
    }
    return ConnectionManager(settings, primary=db, redis_url=url, **knobs)  # type: ignore[arg-type]


async def test_calls_and_the_raw_client(settings: Settings, db: Database, redis_url: str) -> None:
    key = f"tenantry-test:{uuid.uuid4().hex}"
    async with manager_for(settings, db, redis_url) as manager:
        assert await manager.redis_call(lambda r: r.set(key, b"v", ex=60), tenant="t-one")
        assert await manager.redis_call(lambda r: r.get(key)) == b"v"
        client = manager.redis
        assert client is not None
        # The cache's way: the raw client behind the Redis breaker.
        assert await manager.breaker("redis").call(lambda: client.delete(key)) == 1
        info = {b.name: b for b in manager.health().backends}["redis"]
        assert info.health == "healthy"
        assert info.breaker.state is BreakerState.CLOSED
        assert info.pool.gate.in_use == 0
        assert info.pool.driver["checked_out"] == 0
        assert info.pool.bulkhead.tenants_active == 0


async def test_without_redis(settings: Settings, db: Database) -> None:
    async with ConnectionManager(settings, primary=db, redis_url="", health_interval=0) as cm:
        assert cm.redis is None
        with pytest.raises(BackendUnavailable, match="no Redis"):
            await cm.redis_call(lambda r: r.ping())


async def test_a_killed_redis_opens_the_breaker_and_recovers(
    settings: Settings, db: Database, redis_process: RedisProcess
) -> None:
    manager = manager_for(settings, db, redis_process.url)
    async with manager:
        assert await manager.redis_call(lambda r: r.set("k", "1"))
        redis_process.kill()
        with pytest.raises(BackendUnavailable):  # refused, retried, refused: typed, not hung
            await manager.redis_call(lambda r: r.get("k"))
        with pytest.raises(BackendUnavailable):
            await manager.redis_call(lambda r: r.get("k"))
        breaker = manager.breaker("redis")
        assert breaker.state is BreakerState.OPEN
        calls, rejected = manager.member("redis").stats.calls, breaker.rejected
        with pytest.raises(CircuitOpen):  # fails fast: Redis is not even tried, nor retried
            await manager.redis_call(lambda r: r.get("k"))
        assert manager.member("redis").stats.calls == calls
        assert breaker.rejected == rejected + 1
        await asyncio.sleep(0.35)
        assert not manager.member("redis").health.healthy

        await redis_process.start()  # same port, empty (no persistence)
        deadline = time.monotonic() + 5
        while True:
            try:
                assert await manager.redis_call(lambda r: r.get("k")) is None
                break
            except BackendUnavailable:
                assert time.monotonic() < deadline, "Redis did not come back"
                await asyncio.sleep(0.05)
        assert breaker.state is BreakerState.CLOSED
        await asyncio.sleep(0.35)
        assert manager.member("redis").health.healthy
        assert manager.health().status == "ok"

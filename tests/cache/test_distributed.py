"""Several nodes on one Redis: invalidation, leases, and Redis going away mid-load.

These tests check that things happen, never how fast: a change made on one node must reach the
other within a generous deadline (``DEADLINE``). How long it takes is measured by
``benchmarks/bench_propagation.py``, beside a plain Redis pub/sub round trip.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from tenantry.cache import CacheManager
from tenantry.connections.breaker import BreakerState, CircuitBreaker
from tenantry.context import tenant_scope
from tests.conftest import RedisProcess, require_redis

#: Generous: a deadline for what must happen, not a bound on how fast.
DEADLINE = 10.0


def tenant() -> str:
    return f"d-{uuid.uuid4().hex[:10]}"


async def eventually(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``condition`` until it holds; fail after ``DEADLINE`` seconds."""
    deadline = time.monotonic() + DEADLINE
    while not await condition():
        assert time.monotonic() < deadline, f"{what}: not within {DEADLINE:g} s"
        await asyncio.sleep(0.001)


async def node(url: str, **kwargs: object) -> tuple[CacheManager, Redis]:
    redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    manager = CacheManager(redis=redis, **kwargs)  # type: ignore[arg-type]
    await manager.start()
    assert manager.bus is not None
    await asyncio.wait_for(manager.bus.connected.wait(), 5)
    return manager, redis


async def test_a_write_on_one_node_drops_the_l1_copy_on_the_other() -> None:
    url = require_redis()
    (one, r1), (two, r2) = await node(url), await node(url)
    t = tenant()  # by name: other tests' invalidations add tenants to two.tenants()
    try:
        with tenant_scope(t):
            await one.set("price", 10)
            assert await two.get("price") == 10  # from L2, now in two's L1
            assert two.l1.get_entry(t, "price") is not None
            for n in range(20):
                await one.set("price", 11 + n)

                async def two_reads_it(n: int = n) -> bool:
                    return bool(await two.get("price") == 11 + n)

                await eventually(two_reads_it, f"node two reading price {11 + n}")
            assert two.stats().invalidation_delay_p50_ms is not None
            await one.invalidate_tags("none")
            await one.clear_tenant()

            async def gone() -> bool:
                return await two.get("price") is None

            await eventually(gone, "node two dropping the tenant")
    finally:
        for manager, redis in ((one, r1), (two, r2)):
            await manager.close()
            await redis.aclose()


async def test_tag_invalidation_reaches_other_nodes() -> None:
    url = require_redis()
    (one, r1), (two, r2) = await node(url), await node(url)
    try:
        with tenant_scope(tenant()):
            await one.set("album:1", "a", tags=["artist:1"])
            assert await two.get("album:1") == "a"
            await one.invalidate_tags("artist:1")

            async def gone() -> bool:
                return await two.get("album:1") is None

            await eventually(gone, "node two dropping the tagged key")
    finally:
        for manager, redis in ((one, r1), (two, r2)):
            await manager.close()
            await redis.aclose()


async def test_a_lease_lets_one_node_load_for_all() -> None:
    url = require_redis()
    nodes = [await node(url) for _ in range(3)]
    calls = 0

    async def expensive() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.1)
        return "report"

    try:
        with tenant_scope(tenant()):
            results = await asyncio.gather(
                *(m.get_or_set("report", expensive, lease=True) for m, _ in nodes for _ in range(5))
            )
        assert results == ["report"] * 15
        assert calls == 1
    finally:
        for manager, redis in nodes:
            await manager.close()
            await redis.aclose()


async def test_redis_stopping_mid_load_fails_no_call(redis_process: RedisProcess) -> None:
    breaker = CircuitBreaker("redis", minimum_calls=5, window_size=20, open_duration=0.3)
    redis = Redis.from_url(redis_process.url, socket_timeout=0.2, socket_connect_timeout=0.2)
    cache = CacheManager(redis=redis, breaker=breaker)
    await cache.start()
    rng = random.Random(7)
    calls = errors = 0

    async def loader() -> int:
        return rng.randint(0, 100)

    async def mixed_load(count: int) -> None:
        nonlocal calls, errors
        for _ in range(count):
            key = f"k{rng.randint(0, 50)}"
            op = rng.random()
            try:
                if op < 0.5:
                    await cache.get_or_set(key, loader)
                elif op < 0.7:
                    await cache.set(key, 1)
                elif op < 0.8:
                    await cache.delete(key)
                elif op < 0.9:
                    await cache.get_many([key, "k1", "k2"])
                else:
                    await cache.invalidate_tags("t")
            except Exception:  # noqa: BLE001 - counting is the test
                errors += 1
            calls += 1
            await asyncio.sleep(0)

    async def load_until(state: BreakerState, what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while breaker.state is not state:
            assert time.monotonic() < deadline, f"{what}: not within {DEADLINE:g} s"
            await mixed_load(10)

    t = tenant()
    try:
        with tenant_scope(t):
            await mixed_load(100)
            redis_process.stop()
            await load_until(BreakerState.OPEN, "the breaker opening after Redis stopped")
            await mixed_load(100)  # served without Redis
            redis_process.start()
            await load_until(BreakerState.CLOSED, "L2 used again after Redis came back")
            await cache.set("after", "back")
            cache.l1.clear_tenant(t)
            assert await cache.get("after") == "back"  # served by L2 again
        assert calls >= 200
        assert errors == 0
    finally:
        await cache.close()
        await redis.aclose()

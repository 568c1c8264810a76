"""A real Redis Cluster on loopback (three masters, ``tests/conftest.py``'s ``redis_cluster``):
with ``REDIS_CLUSTER_ENABLED`` the connections' client is a ``RedisCluster``, and every Redis
user works on it: the cache's L2 and its invalidation channel (two managers: two processes),
session revocation, the shared request limit; each tenant's keys sit in one slot.

Two tenants are picked so that their slots sit on different masters: a tenant's namespace
flush, which scans every master, is then seen to find its keys wherever they are, and to leave
the other tenant's alone.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import RedisCluster

from tenantry.cache import CacheManager
from tenantry.cache.l2 import RedisTier
from tenantry.config import Settings
from tenantry.connections import BreakerState, ConnectionManager, PoolLimits
from tenantry.connections.redis_cluster import GatedCluster
from tenantry.context import tenant_scope
from tenantry.db.doctor import run_doctor
from tenantry.db.engine import Database
from tenantry.errors import AuthenticationError, RateLimited
from tenantry.lifecycle import load_policies
from tenantry.lifecycle.quotas import RequestLimiter
from tenantry.lifecycle.shared_rate import SharedRate
from tenantry.sessions.manager import SessionManager
from tenantry.tenants import TenantRegistry
from tests.conftest import (
    TOKEN,
    NewTenant,
    RedisClusterProcesses,
    require_redis,
    started_cluster,
)
from tests.support.service import running_app, with_tiers

pytestmark = pytest.mark.redis

#: Generous: a deadline for what must happen, not a bound on how fast.
DEADLINE = 10.0
FREE_RATE = 20  # the shipped policies' free tier


async def eventually(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await condition():
        assert time.monotonic() < deadline, f"{what}: not within {DEADLINE:g} s"
        await asyncio.sleep(0.002)


def connections(settings: Settings, db: Database, url: str) -> ConnectionManager:
    """One process's connections: the cluster through ``REDIS_CLUSTER_ENABLED``."""
    clustered = settings.model_copy(update={"redis_cluster_enabled": True, "redis_url": url})
    return ConnectionManager(
        clustered, primary=db, health_interval=0, redis_limits=PoolLimits(2, 8)
    )


def client(manager: ConnectionManager) -> RedisCluster:
    redis = manager.redis
    assert isinstance(redis, RedisCluster)
    return redis


@pytest.fixture
async def two(
    settings: Settings, db: Database, redis_cluster: RedisClusterProcesses
) -> AsyncIterator[tuple[ConnectionManager, ConnectionManager]]:
    one, other = (connections(settings, db, redis_cluster.url) for _ in range(2))
    try:
        yield one, other
    finally:
        await one.close()
        await other.close()


async def cache_on(manager: ConnectionManager) -> CacheManager:
    cache = CacheManager(redis=manager.redis, breaker=manager.breaker("redis"))
    await cache.start()
    assert cache.bus is not None
    assert cache.bus.sharded
    await asyncio.wait_for(cache.bus.connected.wait(), 5)
    return cache


async def tenants_on_two_masters(redis: RedisCluster) -> tuple[str, str]:
    """Two tenant ids whose slots are served by different masters."""
    await redis.initialize()
    first = f"c-{uuid.uuid4().hex[:10]}"
    owner = redis.get_node_from_key(SharedRate.key(first))
    while True:
        second = f"c-{uuid.uuid4().hex[:10]}"
        if redis.get_node_from_key(SharedRate.key(second)) != owner:
            return first, second


async def keys_of(redis: RedisCluster, tenant: str) -> list[bytes]:
    """Every key naming ``tenant``'s hash tag, from every master."""
    pattern = "*{" + tenant + "}*"
    return [key async for key in redis.scan_iter(match=pattern, count=1000)]


async def test_the_manager_builds_a_cluster_client(
    settings: Settings, db: Database, redis_cluster: RedisClusterProcesses
) -> None:
    async with connections(settings, db, redis_cluster.url) as manager:
        redis = client(manager)
        key = f"tenantry-test:{{t-one}}:{uuid.uuid4().hex}"
        assert await manager.redis_call(lambda r: r.set(key, b"v", ex=60), tenant="t-one")
        assert await manager.redis_call(lambda r: r.get(key)) == b"v"
        assert len(redis.get_primaries()) == 3
        await manager.check_health()  # the probe PINGs every master
        member = manager.member("redis")
        member.ok_since_check = 0
        assert await member.check(1.0)
        info = {b.name: b for b in manager.health().backends}["redis"]
        assert info.health == "healthy"
        assert info.pool.driver["size"] == 3 * 9  # max_size (+ 1) connections to each node
        assert info.pool.driver["checked_out"] == 0
        assert await redis.delete(key) == 1


async def test_a_burst_waits_for_connections_instead_of_failing(
    two: tuple[ConnectionManager, ConnectionManager],
) -> None:
    """redis-py's cluster pools do not wait; the client's gate does, as the single server's
    blocking pool: 200 cache reads at once on 8 connections all reach Redis, the breaker stays
    closed, and no more than 8 were in flight (each node's pool has one spare)."""
    manager = two[0]
    redis = client(manager)
    assert isinstance(redis, GatedCluster)
    cache = CacheManager(redis=redis, breaker=manager.breaker("redis"))
    assert cache.l2 is not None
    most = 0

    async def read(key: str) -> None:
        nonlocal most
        most = max(most, redis.in_flight)
        await cache.get(key)
        most = max(most, redis.in_flight)

    with tenant_scope(f"c-{uuid.uuid4().hex[:10]}"):
        await asyncio.gather(*(read(f"k{i}") for i in range(200)))
        async with redis.pipeline() as pipe:  # a pipeline holds one slot too, and gives it back
            await pipe.get("{x}a").get("{x}b").execute()
    assert cache.l2.errors == 0
    assert manager.breaker("redis").state is BreakerState.CLOSED
    assert 1 < most <= 8
    assert redis.in_flight == 0
    assert all(node.max_connections == 9 for node in redis.get_nodes())
    await cache.close()


async def test_the_cache_on_the_cluster_across_two_processes(
    two: tuple[ConnectionManager, ConnectionManager],
) -> None:
    one_cm, two_cm = two
    redis = client(one_cm)
    a, b = await tenants_on_two_masters(redis)
    one, other = await cache_on(one_cm), await cache_on(two_cm)
    try:
        for t in (a, b):
            with tenant_scope(t):
                await one.set("price", 10, tags=["prices"])
                await one.set_many({"x": 1, "y": 2}, tags=["prices"])
        with tenant_scope(a):
            assert await other.get("price") == 10  # from L2, into the other's L1
            assert await other.get_many(["x", "y", "z"]) == {"x": 1, "y": 2}
            assert other.l1.get_entry(a, "price") is not None
            await one.set("price", 11)

            async def other_reads_11() -> bool:
                return bool(await other.get("price") == 11)

            await eventually(other_reads_11, "invalidation reaching the other's L1")
            assert other.stats().invalidation_delay_p50_ms is not None
            await one.delete("x")

            async def x_gone() -> bool:
                return await other.get("x") is None

            await eventually(x_gone, "a delete reaching the other")
            await one.invalidate_tags("prices")

            async def y_gone() -> bool:
                return await other.get("y") is None

            await eventually(y_gone, "a tag invalidation reaching the other")
            await one.set("kept", 1)
            assert await keys_of(redis, a)
            await other.clear_tenant()  # the tenant's namespace flush: every master scanned
            # Only the tenant's tombstone is left (fills read before the flush are refused).
            assert await keys_of(redis, a) == [RedisTier.tombstone_key(a, None)]

            async def kept_gone() -> bool:
                return await one.get("kept") is None

            await eventually(kept_gone, "a tenant flush reaching the other")
        with tenant_scope(b):  # the other tenant, on another master, untouched
            assert await other.get("price") == 10
            assert len(await keys_of(redis, b)) >= 3
    finally:
        await one.close()
        await other.close()


async def load() -> str:
    return "loaded"


async def test_each_tenants_keys_sit_in_one_slot(
    two: tuple[ConnectionManager, ConnectionManager],
) -> None:
    manager = two[0]
    redis = client(manager)
    a, b = await tenants_on_two_masters(redis)
    cache = await cache_on(manager)
    shared = SharedRate(redis, manager.breaker("redis"))
    try:
        for t in (a, b):
            with tenant_scope(t):
                await cache.set_many({"k1": 1, "k2": 2}, tags=["t1", "t2"])
                await cache.get_or_set("loaded", load)
            assert await shared.take(t, 5.0) == 0.0
            assert cache.l2 is not None
            assert await cache.l2.acquire_lease(t, "leased", 5.0) is not None
        slots = {}
        for t in (a, b):
            keys = await keys_of(redis, t)
            assert len(keys) >= 6  # k1, k2, loaded, two tag sets, the lease, the rate bucket
            assert {k.split(b":")[1] for k in keys} == {b"{" + t.encode() + b"}"}
            found = {int(await redis.cluster_keyslot(k)) for k in keys}
            assert len(found) == 1, f"{t}'s keys in slots {found}"
            (slot,) = found
            node = redis.get_node_from_key(keys[0])
            counted = await redis.execute_command(
                "CLUSTER COUNTKEYSINSLOT", slot, target_nodes=node
            )
            assert int(counted) == len(keys)  # the slot holds the tenant's keys, no others
            slots[t] = slot
        assert slots[a] != slots[b]  # picked on different masters
    finally:
        await cache.close()


async def test_a_revocation_on_one_node_is_refused_on_the_other(
    db: Database, new_tenant: NewTenant, two: tuple[ConnectionManager, ConnectionManager]
) -> None:
    cache_a, cache_b = await cache_on(two[0]), await cache_on(two[1])
    a, b = SessionManager(db, cache=cache_a), SessionManager(db, cache=cache_b)
    try:
        tenant = (await new_tenant()).id
        for _ in range(5):
            session_id, token = await a.create_session(tenant, "u1")
            await b.validate(token)  # node B now holds the principal in its L1
            await b.validate(token)
            await a.revoke(session_id)
            deadline = time.monotonic() + DEADLINE
            while True:
                try:
                    await b.validate(token)
                except AuthenticationError:
                    break
                assert time.monotonic() < deadline, "node B still accepts the revoked token"
                await asyncio.sleep(0.001)
    finally:
        await cache_a.close()
        await cache_b.close()


async def admitted(limiter: RequestLimiter, tenant: str) -> bool:
    try:
        await limiter.take(tenant)
    except RateLimited:
        return False
    return True


async def test_the_shared_request_limit_on_the_cluster(
    db: Database, new_tenant: NewTenant, two: tuple[ConnectionManager, ConnectionManager]
) -> None:
    noisy, quiet, warm = [(await new_tenant()).id for _ in range(3)]
    registry, tiers = TenantRegistry(db), load_policies()
    one, other = (
        RequestLimiter(registry, tiers, redis=m.redis, breaker=m.breaker("redis")) for m in two
    )
    assert one.shared
    assert other.shared
    for limiter in (one, other):  # the cluster's slots and the script loaded before the clock
        await limiter.take(warm)
    counts = {id(one): 0, id(other): 0}
    start = time.monotonic()
    while time.monotonic() - start < 1.0:  # both flood the tenant, in turns, for a second
        for limiter in (one, other):
            counts[id(limiter)] += await admitted(limiter, noisy)
        await asyncio.sleep(0.001)
    elapsed = time.monotonic() - start
    total = sum(counts.values())
    assert FREE_RATE * (1 + elapsed) * 0.8 <= total <= FREE_RATE * (1 + elapsed) + 1
    assert min(counts.values()) > 0
    assert one.fallbacks == other.fallbacks == 0
    for _ in range(FREE_RATE):  # another tenant: its whole burst
        await other.take(quiet)
    assert quiet not in other.refused
    assert await client(two[0]).pttl(SharedRate.key(noisy)) > 0


async def test_the_service_on_the_cluster(
    settings: Settings,
    db: Database,
    tmp_path: Path,
    two: tuple[ConnectionManager, ConnectionManager],
    redis_cluster: RedisClusterProcesses,
) -> None:
    """The app with ``REDIS_CLUSTER_ENABLED``: its connections on the cluster, and its limiter
    refusing a tenant whose bucket another process emptied there."""
    tiers = with_tiers(tmp_path, "[free]\nrequests_per_second = 1\n")  # refills in 1 s
    changes = {"redis_url": redis_cluster.url, "redis_cluster_enabled": True}
    async with running_app(settings, tier_policies=tiers, **changes) as (state, http):
        assert isinstance(state.connections.redis, RedisCluster)
        assert state.cache.bus is not None
        assert state.cache.bus.sharded
        tenant = f"sc-{uuid.uuid4().hex[:10]}"
        await state.tenants.create(tenant, "Clustered")
        redis = two[0].redis
        other = RequestLimiter(TenantRegistry(db), load_policies(tiers), redis=redis)
        await other.take(tenant)  # another process takes the tenant's whole burst
        answer = await http.get("/settings", headers={**TOKEN, "X-Tenant-ID": tenant})
        assert answer.status_code == 429
        info = {b.name: b for b in state.connections.health().backends}["redis"]
        assert info.health == "healthy"


async def test_the_doctor_checks_the_cluster(
    settings: Settings, redis_cluster: RedisClusterProcesses
) -> None:
    clustered = settings.model_copy(
        update={"redis_url": redis_cluster.url, "redis_cluster_enabled": True}
    )
    (check,) = [c for c in await run_doctor(clustered) if c.name == "redis"]
    assert check.ok, check.detail
    assert check.detail == "a cluster of 3 masters, cluster_state:ok"
    single = settings.model_copy(
        update={"redis_url": require_redis(), "redis_cluster_enabled": True}
    )
    (check,) = [c for c in await run_doctor(single) if c.name == "redis"]
    assert not check.ok  # one server without cluster mode is not a cluster


async def test_a_killed_master_fails_its_tenants_softly_and_recovers(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    """A cluster of the test's own: the master serving one tenant is killed. That tenant's cache
    reads answer as misses (no error), the health check fails, another tenant's reads on
    another master go on; the master restarted (empty, with its slots), the tenant's cache is
    back in Redis."""
    cluster = started_cluster(tmp_path)
    manager = connections(settings, db, cluster.url)
    cache = await cache_on(manager)
    try:
        redis = client(manager)
        a, b = await tenants_on_two_masters(redis)
        for t in (a, b):
            with tenant_scope(t):
                await cache.set("k", t)
        node = redis.get_node_from_key(SharedRate.key(a))
        assert node is not None
        cluster.kill(int(node.port))
        cache.l1.clear_tenant(a)
        cache.l1.clear_tenant(b)
        assert cache.l2 is not None
        with tenant_scope(a):
            assert await cache.get("k") is None  # a miss, not an error
        assert cache.l2.errors >= 1
        member = manager.member("redis")

        async def probed(healthy: bool) -> bool:
            member.failed_since_check = 1  # a probe, not the calls' record
            return await member.check(1.0) is healthy

        await eventually(lambda: probed(False), "PING to every master failing")
        with tenant_scope(b):
            assert await cache.get("k") == b  # the other master still serves its tenants
        cluster.restart(int(node.port))

        async def back() -> bool:
            with tenant_scope(a):
                await cache.set("k", "again")
                cache.l1.clear_tenant(a)
                return bool(await cache.get("k") == "again")

        await eventually(back, "the restarted master serving its tenant's cache")
        await eventually(lambda: probed(True), "PING to every master passing again")
    finally:
        await cache.close()
        await manager.close()
        cluster.stop()

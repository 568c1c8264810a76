"""The cache's Redis tier and its manager paths, against raw redis-py on the same server.

Rows (Redis from ``TENANTRY_BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379/0``):

- ``cache L2 get (RedisTier)`` vs ``redis-py GET``: one key of 200 bytes; the tier adds the
  breaker, the tenant-namespaced key and the envelope. Goal: <= 1.3x.
- ``cache L2 set (RedisTier)`` vs ``redis-py SET PX``: the same value and TTL.
- ``cache get, L1 miss -> L2 hit (CacheManager)`` vs ``redis-py GET``: the whole manager path,
  decoding and filling L1.
- ``cache get, L1 hit (CacheManager)``: the manager's hot path, peer: a dict behind an async call.

The time a write on one node takes to reach another node's L1 is in ``bench_propagation.py``,
beside a plain Redis pub/sub round trip.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from benchmarks.environment import Environment, reachable_redis
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from tenantry.cache import CacheManager
from tenantry.cache.l2 import Envelope, RedisTier
from tenantry.connections.breaker import CircuitBreaker
from tenantry.context import tenant_scope

__all__ = ["BENCHMARK"]

L2_GET = "cache L2 get (RedisTier)"
L2_SET = "cache L2 set (RedisTier)"
RAW_GET = "redis-py GET"
RAW_SET = "redis-py SET PX"
MANAGER_L2 = "cache get, L1 miss -> L2 hit (CacheManager)"
MANAGER_L1 = "cache get, L1 hit (CacheManager)"
DICT_ASYNC = "dict get behind an async call"
OPERATIONS = (L2_GET, RAW_GET, L2_SET, RAW_SET, MANAGER_L2, MANAGER_L1, DICT_ASYNC)

VALUE = "v" * 200
TENANT = "bench-cache"


async def run(env: Environment, plan: Plan) -> list[Row]:
    del env  # the cache needs no database
    url = await reachable_redis("cache benchmarks")
    if url is None:
        return []
    raw = Redis.from_url(url)
    tier = RedisTier(raw, CircuitBreaker("bench-redis"))
    node_a = CacheManager(redis=Redis.from_url(url))
    await node_a.start()
    assert node_a.bus is not None
    await node_a.bus.connected.wait()
    try:
        return await _measure(raw, tier, node_a, plan)
    finally:
        await node_a.close()
        await raw.delete(RedisTier.key(TENANT, "k"), f"raw:{TENANT}:k")
        await raw.aclose()


async def _measure(raw: Redis, tier: RedisTier, node_a: CacheManager, plan: Plan) -> list[Row]:
    envelope = Envelope(node_a.codec.encode(VALUE), time.time() + 3600, 0.0)
    raw_key = f"raw:{TENANT}:k"
    await raw.set(raw_key, envelope.pack(), px=3_600_000)
    await tier.set_many(TENANT, [("k", envelope)], 3600, ())
    plain: dict[str, str] = {"k": VALUE}

    async def l2_get() -> object:
        return await tier.get(TENANT, "k")

    async def raw_get() -> object:
        return await raw.get(raw_key)

    async def l2_set() -> None:
        await tier.set_many(TENANT, [("k", envelope)], 3600, ())

    async def raw_set() -> None:
        await raw.set(raw_key, envelope.pack(), px=3_600_000)

    with tenant_scope(TENANT):
        await node_a.set("k", VALUE, ttl=3600)
        await node_a.set("hot", VALUE, ttl=3600)

    # The manager rows run inside one tenant scope, as a request would (see the end).
    async def manager_l2() -> object:
        node_a.l1.delete(TENANT, "k")
        return await node_a.get("k")

    async def manager_l1() -> object:
        return await node_a.get("hot")

    async def dict_get() -> object:
        return plain.get("k")

    cases = [
        Case(L2_GET, l2_get, peer=RAW_GET),
        Case(RAW_GET, raw_get),
        Case(L2_SET, l2_set, peer=RAW_SET),
        Case(RAW_SET, raw_set),
        Case(MANAGER_L2, manager_l2, peer=RAW_GET),
        Case(MANAGER_L1, manager_l1, peer=DICT_ASYNC),
        Case(DICT_ASYNC, dict_get),
    ]
    with tenant_scope(TENANT):
        return await run_cases(cases, plan, module="cache")


BENCHMARK = Benchmark(name="cache", operations=OPERATIONS, run=run)

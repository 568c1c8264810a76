"""The cache's Redis tier and its manager paths, against raw redis-py on the same server.

Rows (Redis from ``TENANTRY_BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379/0``):

- ``cache L2 get (RedisTier)`` vs ``redis-py GET``: one key of 200 bytes; the tier adds the
  breaker, the tenant-namespaced key and the envelope. Goal: <= 1.3x.
- ``cache L2 set (RedisTier)`` vs ``redis-py SET PX``: the same value and TTL.
- ``cache L2 delete (RedisTier, tombstone)`` vs ``redis-py UNLINK``: a delete leaves a tombstone
  (one script reading Redis's TIME); what a bare delete cost before fills.
- ``cache fill after a read (CacheManager: token + fill)`` vs ``cache set (CacheManager, L1+L2)``:
  what caching a value read from the database costs now (two scripts: the token's TIME, the
  checked write) against the authoritative write it replaced (a SET and an invalidation).
- ``cache get, L1 miss -> L2 hit (CacheManager)`` vs ``redis-py GET``: the whole manager path,
  decoding and filling L1.
- ``cache get, L1 hit (CacheManager)``: the manager's hot path, peer: a dict behind an async call.

Rows of the manager on L1 alone (the embedded mode; these run without Redis too), timed in
batches of ``BATCH`` calls and reported per call (a call is about a microsecond), interleaved
with their peers: ``await cm.get(k)`` on an L1 hit against a dict and cachetools' LRU behind an
async call, and against the lookup a namespaced hit cannot skip (the tenant from its context
variable, then two dicts), and against that lookup with an exact expiry check and a hit count
(the floor under any exact, namespaced, counted hit, with no eviction policy);
``await cm.set(k, v)`` (1,000 keys in turn, a 200-byte string, the default TTL) against a
dict's assignment behind an async call.
The goals: get within 2x the dict, set at 500,000 a second or more.

The time a write on one node takes to reach another node's L1 is in ``bench_propagation.py``,
beside a plain Redis pub/sub round trip.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from cachetools import LRUCache
from redis.asyncio import Redis

from benchmarks.environment import Environment, reachable_redis
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from tenantry.cache import CacheManager
from tenantry.cache.l2 import Envelope, RedisTier
from tenantry.connections.breaker import CircuitBreaker
from tenantry.context import _current as _tenant_var  # as the manager's hot path reads it
from tenantry.context import current_tenant, tenant_scope

__all__ = ["BENCHMARK"]

L2_GET = "cache L2 get (RedisTier)"
L2_SET = "cache L2 set (RedisTier)"
RAW_GET = "redis-py GET"
RAW_SET = "redis-py SET PX"
MANAGER_L2 = "cache get, L1 miss -> L2 hit (CacheManager)"
MANAGER_L1 = "cache get, L1 hit (CacheManager)"
DICT_ASYNC = "dict get behind an async call"
L2_DELETE = "cache L2 delete (RedisTier, tombstone)"
RAW_UNLINK = "redis-py UNLINK"
MANAGER_FILL = "cache fill after a read (CacheManager: token + fill)"
MANAGER_SET = "cache set (CacheManager, L1+L2)"
REDIS_OPERATIONS = (
    L2_GET,
    RAW_GET,
    L2_SET,
    RAW_SET,
    MANAGER_L2,
    MANAGER_L1,
    DICT_ASYNC,
    L2_DELETE,
    RAW_UNLINK,
    MANAGER_FILL,
    MANAGER_SET,
)
LOCAL_GET = "cache get, L1 hit (CacheManager, L1 alone), batch"
LOCAL_DICT_GET = "dict get behind an async call, batch"
LOCAL_LRU_GET = "cachetools LRUCache get behind an async call, batch"
LOCAL_NESTED_GET = "dict get by context tenant then key behind an async call, batch"
LOCAL_FLOOR_GET = (
    "dict get by context tenant then key, expiry checked and hit counted, async call, batch"
)
LOCAL_SET = "cache set (CacheManager, L1 alone), batch"
LOCAL_DICT_SET = "dict set behind an async call, batch"
LOCAL_OPERATIONS = (
    LOCAL_GET,
    LOCAL_DICT_GET,
    LOCAL_LRU_GET,
    LOCAL_NESTED_GET,
    LOCAL_FLOOR_GET,
    LOCAL_SET,
    LOCAL_DICT_SET,
)
OPERATIONS = REDIS_OPERATIONS + LOCAL_OPERATIONS

VALUE = "v" * 200
TENANT = "bench-cache"
BATCH = 100
SET_KEYS = [f"key-{i}" for i in range(1_000)]


async def run(env: Environment, plan: Plan) -> list[Row]:
    del env  # the cache needs no database
    rows: list[Row] = []
    if plan.wants_any(LOCAL_OPERATIONS):
        rows += await _measure_local(plan)
    if plan.wants_any(REDIS_OPERATIONS):
        rows += await _with_redis(plan)
    return rows


async def _measure_local(plan: Plan) -> list[Row]:
    """The manager on L1 alone against a dict and an LRU behind an async call, per call."""
    cache = CacheManager()
    plain: dict[str, str] = {}
    lru: LRUCache[str, str] = LRUCache(maxsize=len(SET_KEYS) + 1)
    with tenant_scope(TENANT):
        for key in SET_KEYS:
            await cache.set(key, VALUE)
            plain[key] = lru[key] = VALUE
        assert await cache.get("key-7") == plain["key-7"] == lru.get("key-7") == VALUE
    hot = "key-7"
    floor_gets, floor_hits = _floor(plain, hot)

    async def dict_get(key: str) -> object:
        return plain.get(key)

    by_tenant: dict[str, dict[str, str]] = {TENANT: plain}

    async def nested_get(key: str) -> object:
        # The lookup alone that a tenant-namespaced hit cannot skip: the tenant from its context
        # variable, its dict, the key in it (no expiry check, no read recorded).
        table = by_tenant.get(current_tenant())  # type: ignore[arg-type]
        return None if table is None else table.get(key)

    async def lru_get(key: str) -> object:
        return lru.get(key)

    async def dict_set(key: str, value: str) -> None:
        plain[key] = value

    async def manager_gets() -> None:
        for _ in range(BATCH):
            await cache.get(hot)

    async def dict_gets() -> None:
        for _ in range(BATCH):
            await dict_get(hot)

    async def lru_gets() -> None:
        for _ in range(BATCH):
            await lru_get(hot)

    async def nested_gets() -> None:
        for _ in range(BATCH):
            await nested_get(hot)

    turn = 0

    async def manager_sets() -> None:
        nonlocal turn
        start, turn = turn, (turn + BATCH) % len(SET_KEYS)
        for key in SET_KEYS[start : start + BATCH]:
            await cache.set(key, VALUE)

    dict_turn = 0

    async def dict_sets() -> None:
        nonlocal dict_turn
        start, dict_turn = dict_turn, (dict_turn + BATCH) % len(SET_KEYS)
        for key in SET_KEYS[start : start + BATCH]:
            await dict_set(key, VALUE)

    cases = [
        Case(LOCAL_GET, manager_gets, peer=LOCAL_DICT_GET, batch=BATCH),
        Case(LOCAL_DICT_GET, dict_gets, batch=BATCH),
        Case(LOCAL_LRU_GET, lru_gets, peer=LOCAL_DICT_GET, batch=BATCH),
        Case(LOCAL_NESTED_GET, nested_gets, peer=LOCAL_DICT_GET, batch=BATCH),
        Case(LOCAL_FLOOR_GET, floor_gets, peer=LOCAL_DICT_GET, batch=BATCH),
        Case(LOCAL_SET, manager_sets, peer=LOCAL_DICT_SET, batch=BATCH),
        Case(LOCAL_DICT_SET, dict_sets, batch=BATCH),
    ]
    try:
        with tenant_scope(TENANT):
            rows = await run_cases(cases, plan, module="cache")
            stats = cache.stats()
        assert stats.misses == 0  # every get was a hit
        assert stats.entries == len(SET_KEYS)
        assert floor_hits() > 0  # the floor row counted its hits
        return rows
    finally:
        await cache.close()


class _Held:  # an entry as small as one can be: its value and its deadline
    __slots__ = ("expires_at", "value")

    def __init__(self, value: str, expires_at: float) -> None:
        self.value, self.expires_at = value, expires_at


class _Table:  # a tenant's entries and its hit count
    __slots__ = ("entries", "hits")

    def __init__(self, entries: dict[str, _Held]) -> None:
        self.entries, self.hits = entries, 0


def _floor(
    plain: dict[str, str], hot: str
) -> tuple[Callable[[], Awaitable[None]], Callable[[], int]]:
    """The floor row's batch of gets of ``hot``, and its hit count so far."""
    deadline = time.monotonic() + 3600
    held = _Table({key: _Held(value, deadline) for key, value in plain.items()})
    held_by_tenant: dict[str, _Table] = {TENANT: held}
    monotonic = time.monotonic

    async def floor_get(key: str) -> object:
        # The least an exact, tenant-namespaced, expiring, counted hit does: the lookup of the
        # nested row (the context variable read directly, as the manager does), the deadline
        # against one monotonic clock read, the tenant's hit counted; no eviction policy at all.
        table = held_by_tenant.get(_tenant_var.get())  # type: ignore[arg-type]
        if table is not None:
            entry = table.entries.get(key)
            if entry is not None and entry.expires_at > monotonic():
                table.hits += 1
                return entry.value
        return None

    async def floor_gets() -> None:
        for _ in range(BATCH):
            await floor_get(hot)

    return floor_gets, lambda: held.hits


async def _with_redis(plan: Plan) -> list[Row]:
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

    async def l2_delete() -> None:
        await tier.delete(TENANT, ["gone"])

    async def raw_unlink() -> None:
        await raw.unlink(f"raw:{TENANT}:gone")

    async def manager_fill() -> None:
        token = await node_a.fill_token("filled")
        await node_a.fill("filled", VALUE, token, ttl=3600)

    async def manager_set() -> None:
        await node_a.set("filled", VALUE, ttl=3600)

    cases = [
        Case(L2_GET, l2_get, peer=RAW_GET),
        Case(RAW_GET, raw_get),
        Case(L2_SET, l2_set, peer=RAW_SET),
        Case(RAW_SET, raw_set),
        Case(MANAGER_L2, manager_l2, peer=RAW_GET),
        Case(MANAGER_L1, manager_l1, peer=DICT_ASYNC),
        Case(DICT_ASYNC, dict_get),
        Case(L2_DELETE, l2_delete, peer=RAW_UNLINK),
        Case(RAW_UNLINK, raw_unlink),
        Case(MANAGER_FILL, manager_fill, peer=MANAGER_SET),
        Case(MANAGER_SET, manager_set),
    ]
    with tenant_scope(TENANT):
        return await run_cases(cases, plan, module="cache")


BENCHMARK = Benchmark(name="cache", operations=OPERATIONS, run=run)

"""The L1 cache (:class:`~tenantry.cache.l1.TenantL1`): speed against its peers, and hit ratios.

Everything runs single-threaded on one core, in this process, with no I/O. A get or set takes
about a microsecond, too short to time one call at a time (``perf_counter_ns`` itself costs
~0.1 us), so every latency row times batches of ``BATCH`` calls and reports per call: p50 and
p95 are percentiles of batch means, ops/s counts calls.

- gets: a Zipf(0.99) sequence over ``TENANTS`` x ``KEYS_PER_TENANT`` keys, every one cached (a
  hit), the same sequence for every cache. Async rows await ``async def get(tenant, key)``
  wrappers, the way the cache manager calls L1; sync rows call the cache directly. L1's peer is
  a plain dict keyed by ``(tenant, key)`` behind the same wrapper; cashews' in-memory backend
  (keys ``"tenant:key"``) is compared with L1 (its ratio: how many times slower than L1).
- sets: a Zipf(0.9) sequence of keys with sizes into a full cache of ``SET_CAPACITY`` bytes
  (inserts, updates and evictions), the same for L1 and for cachetools' LRU bounded by bytes.
- hit ratios: the traces of ``tests/cache/traces.py`` replayed cache-aside (get; on a miss,
  set) into ``RATIO_CAPACITY`` bytes, by TenantL1 and by cachetools' ``LRUCache(maxsize=bytes,
  getsizeof=size)``: a Zipf(0.9) trace, and the same with a scan of one-hit keys every 5,000
  requests. The ratio column is L1's hit ratio over LRU's.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from operator import itemgetter

from cachetools import LRUCache
from cashews import Cache as CashewsCache

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Metric, Plan, Row, run_cases, run_metrics
from tenantry.cache.l1 import MISSING, TenantL1
from tests.cache.traces import Trace, replay, scan_trace, zipf_trace

__all__ = ["BENCHMARK"]

BATCH = 100
TENANTS = 8
KEYS_PER_TENANT = 1_250
SET_CAPACITY = 2 * 1024 * 1024
RATIO_CAPACITY = 1024 * 1024
SEED = 20261121

L1_GET_ASYNC = "l1 get hit, async wrapper"
DICT_GET_ASYNC = "dict get hit, async wrapper (tenant, key) tuple"
CASHEWS_GET = "cashews mem:// get hit, async (peer of l1)"
L1_GET = "l1 get hit, sync"
CACHETOOLS_GET = "cachetools LRUCache get hit, sync"
L1_SET = "l1 set into a full cache, sync"
CACHETOOLS_SET = "cachetools LRUCache set into a full cache, sync"
L1_ZIPF = "l1 hit ratio, Zipf 0.9 trace"
LRU_ZIPF = "LRU hit ratio (cachetools), Zipf 0.9 trace"
L1_SCAN = "l1 hit ratio, Zipf 0.9 + scans trace"
LRU_SCAN = "LRU hit ratio (cachetools), Zipf 0.9 + scans trace"
OPERATIONS = (
    L1_GET_ASYNC,
    DICT_GET_ASYNC,
    CASHEWS_GET,
    L1_GET,
    CACHETOOLS_GET,
    L1_SET,
    CACHETOOLS_SET,
    L1_ZIPF,
    LRU_ZIPF,
    L1_SCAN,
    LRU_SCAN,
)

Pair = tuple[str, str]


def get_sequence(length: int) -> tuple[list[Pair], list[Pair]]:
    """(every cached (tenant, key), a Zipf(0.99) sequence of lookups among them)."""
    keys = [(f"tenant-{t}", f"key-{k}") for t in range(TENANTS) for k in range(KEYS_PER_TENANT)]
    trace = zipf_trace(n_keys=len(keys), s=0.99, length=length, seed=SEED)
    return keys, [keys[int(name[1:])] for name, _ in trace]


def batches(sequence: Sequence[Pair]) -> Callable[[], Sequence[Pair]]:
    """A function returning the next ``BATCH`` items of ``sequence``, round and round."""
    chunks = itertools.cycle(
        [sequence[i : i + BATCH] for i in range(0, len(sequence) - BATCH + 1, BATCH)]
    )
    return chunks.__next__


def async_case(
    get: Callable[[str, str], Awaitable[object]], sequence: Sequence[Pair]
) -> Callable[[], Awaitable[None]]:
    next_batch = batches(sequence)

    async def run() -> None:
        for tenant, key in next_batch():
            await get(tenant, key)

    return run


def sync_case(
    call: Callable[[str, str], object], sequence: Sequence[Pair]
) -> Callable[[], Awaitable[None]]:
    next_batch = batches(sequence)

    async def run() -> None:
        for tenant, key in next_batch():
            call(tenant, key)

    return run


async def get_cases(plan: Plan) -> tuple[list[Case], CashewsCache]:
    keys, sequence = get_sequence(max(20_000, plan.iterations * BATCH // 5))
    l1: TenantL1[str] = TenantL1(1 << 30)
    table: dict[Pair, str] = {}
    lru: LRUCache[Pair, str] = LRUCache(maxsize=len(keys) + 1)
    cashews = CashewsCache()
    cashews.setup(f"mem://?size={len(keys) + 1}")
    for tenant, key in keys:
        value = f"{tenant}/{key}"
        assert l1.set(tenant, key, value, 100)
        table[(tenant, key)] = lru[(tenant, key)] = value
        await cashews.set(f"{tenant}:{key}", value)
    for tenant, key in keys[:50]:  # every cache holds every key, with the same value
        expected = f"{tenant}/{key}"
        assert l1.get(tenant, key) == lru.get((tenant, key)) == expected
        assert await cashews.get(f"{tenant}:{key}") == expected

    async def l1_get(tenant: str, key: str) -> object:
        return l1.get(tenant, key)

    async def dict_get(tenant: str, key: str) -> object:
        return table.get((tenant, key))

    async def cashews_get(tenant: str, key: str) -> object:
        return await cashews.get(f"{tenant}:{key}")  # cashews namespaces by string prefix

    def lru_get(tenant: str, key: str) -> object:
        return lru.get((tenant, key))

    cases = [
        Case(L1_GET_ASYNC, async_case(l1_get, sequence), DICT_GET_ASYNC, BATCH),
        Case(DICT_GET_ASYNC, async_case(dict_get, sequence), batch=BATCH),
        Case(CASHEWS_GET, async_case(cashews_get, sequence), L1_GET_ASYNC, BATCH),
        Case(L1_GET, sync_case(l1.get, sequence), CACHETOOLS_GET, BATCH),
        Case(CACHETOOLS_GET, sync_case(lru_get, sequence), batch=BATCH),
    ]
    return cases, cashews


def set_cases(plan: Plan) -> list[Case]:
    trace = zipf_trace(n_keys=20_000, s=0.9, length=max(20_000, plan.iterations * 20), seed=SEED)
    l1: TenantL1[str] = TenantL1(SET_CAPACITY, seed=SEED)
    lru: LRUCache[Pair, tuple[str, int]] = LRUCache(SET_CAPACITY, getsizeof=itemgetter(1))
    sizes = dict(trace)
    sequence = [(key, key) for key, _ in trace]

    def l1_set(key: str, value: str) -> object:
        return l1.set("tenant-0", key, value, sizes[key])

    def lru_set(key: str, value: str) -> object:
        lru[("tenant-0", key)] = (value, sizes[key])
        return None

    for key, value in sequence:  # start both full
        l1_set(key, value)
        lru_set(key, value)
    assert l1.total_bytes > SET_CAPACITY * 0.95
    assert lru.currsize > SET_CAPACITY * 0.95
    return [
        Case(L1_SET, sync_case(l1_set, sequence), CACHETOOLS_SET, BATCH),
        Case(CACHETOOLS_SET, sync_case(lru_set, sequence), batch=BATCH),
    ]


def hit_ratio_l1(trace: Trace) -> float:
    cache: TenantL1[str] = TenantL1(RATIO_CAPACITY, seed=SEED)
    return replay(
        trace, lambda k: cache.get("t", k) is not MISSING, lambda k, s: cache.set("t", k, k, s)
    )


def hit_ratio_lru(trace: Trace) -> float:
    cache: LRUCache[str, tuple[str, int]] = LRUCache(RATIO_CAPACITY, getsizeof=itemgetter(1))

    def put(key: str, size: int) -> None:
        cache[key] = (key, size)

    return replay(trace, lambda k: cache.get(k) is not None, put)


def metrics(plan: Plan) -> list[Metric]:
    length = plan.iterations * 40  # 200,000 requests (quick: 20,000)
    zipf = zipf_trace(n_keys=10_000, s=0.9, length=length, seed=SEED)
    scans = scan_trace(
        n_keys=10_000, s=0.9, length=length, scan_every=5_000, scan_length=2_000, seed=SEED
    )
    unit = "hit ratio"
    return [
        Metric(L1_ZIPF, lambda: hit_ratio_l1(zipf), unit, LRU_ZIPF, len(zipf)),
        Metric(LRU_ZIPF, lambda: hit_ratio_lru(zipf), unit, count=len(zipf)),
        Metric(L1_SCAN, lambda: hit_ratio_l1(scans), unit, LRU_SCAN, len(scans)),
        Metric(LRU_SCAN, lambda: hit_ratio_lru(scans), unit, count=len(scans)),
    ]


async def run(env: Environment, plan: Plan) -> list[Row]:
    del env  # in-process only: no database
    rows: list[Row] = []
    if plan.wants_any((L1_GET_ASYNC, DICT_GET_ASYNC, CASHEWS_GET, L1_GET, CACHETOOLS_GET)):
        cases, cashews = await get_cases(plan)
        try:
            rows += await run_cases(cases, plan, module="cache_l1")
        finally:
            await cashews.close()
    if plan.wants_any((L1_SET, CACHETOOLS_SET)):
        rows += await run_cases(set_cases(plan), plan, module="cache_l1")
    if plan.wants_any((L1_ZIPF, LRU_ZIPF, L1_SCAN, LRU_SCAN)):
        rows += run_metrics(metrics(plan), plan, module="cache_l1")
    return rows


BENCHMARK = Benchmark(name="cache_l1", operations=OPERATIONS, run=run)

"""Does prefetching pay? The CacheManager's hit ratio with and without its next-key model.

Two traces, replayed cache-aside through ``get_or_set`` with an L1 of 100 KiB:

- the album-browsing trace (``tests/cache/traces.browsing_trace``): listeners open an album and
  play its tracks in order, a sequence the model can learn;
- a Zipf trace of the same length with no sequence, where prefetching can only cost.

The ratio column is the gain (hit ratio with prefetching / without).
"""

from __future__ import annotations

import asyncio
import random

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Metric, Plan, Row, run_metrics
from tenantry.cache import CacheManager
from tenantry.context import tenant_scope
from tests.cache.traces import browsing_trace

__all__ = ["BENCHMARK"]

WITH_SEQ = "cache hit ratio with prefetching, album-browsing trace"
WITHOUT_SEQ = "cache hit ratio without prefetching, album-browsing trace"
WITH_ZIPF = "cache hit ratio with prefetching, Zipf trace"
WITHOUT_ZIPF = "cache hit ratio without prefetching, Zipf trace"
OPERATIONS = (WITH_SEQ, WITHOUT_SEQ, WITH_ZIPF, WITHOUT_ZIPF)
L1_BYTES = 100 * 1024


def zipf_keys(length: int, seed: int = 5, keys: int = 1800) -> list[str]:
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(keys)]
    return [f"k{i}" for i in rng.choices(range(keys), weights, k=length)]


async def hit_ratio(trace: list[str], *, prefetch: bool) -> float:
    cache = CacheManager(l1_bytes=L1_BYTES, prefetch=prefetch)

    async def load() -> str:
        return "x" * 300

    with tenant_scope("bench-prefetch"):
        for key in trace:
            await cache.get_or_set(key, load, ttl=3600)
            await asyncio.sleep(0)  # time between requests: background loads run
        ratio = cache.stats().hit_ratio
    await cache.close()
    return ratio


async def run(env: Environment, plan: Plan) -> list[Row]:
    del env
    sessions = 500 if plan.iterations < 1000 else 3000
    sequential = browsing_trace(sessions=sessions)
    zipf = zipf_keys(len(sequential))
    measured: dict[str, float] = {}
    for name, trace, prefetch in (
        (WITH_SEQ, sequential, True),
        (WITHOUT_SEQ, sequential, False),
        (WITH_ZIPF, zipf, True),
        (WITHOUT_ZIPF, zipf, False),
    ):
        if plan.wants(name) or plan.wants(name.replace(" with ", " without ")):
            measured[name] = await hit_ratio(trace, prefetch=prefetch)
    metrics = [
        Metric(WITH_SEQ, lambda: measured[WITH_SEQ], "hit ratio", WITHOUT_SEQ, len(sequential)),
        Metric(WITHOUT_SEQ, lambda: measured[WITHOUT_SEQ], "hit ratio", count=len(sequential)),
        Metric(WITH_ZIPF, lambda: measured[WITH_ZIPF], "hit ratio", WITHOUT_ZIPF, len(zipf)),
        Metric(WITHOUT_ZIPF, lambda: measured[WITHOUT_ZIPF], "hit ratio", count=len(zipf)),
    ]
    return run_metrics(metrics, plan, module="prefetch")


BENCHMARK = Benchmark(name="prefetch", operations=OPERATIONS, run=run)

"""A tenant's request limit (``RequestLimiter.take``, what the gate calls on every request):
shared through Redis against in-process, in the same run.

- ``request limit take, in-process bucket``: the limiter without Redis; the tenant's tier cached
  (read once, before timing), a token taken from its bucket in this process.
- ``request limit take, shared in Redis (one EVALSHA)``: the same limiter given a Redis client
  (``TENANTRY_BENCH_REDIS_URL``): the tier cached the same way, the token taken by the GCRA
  script in Redis, guarded by a breaker.
- ``redis-py PING``: one round trip to the same Redis, the floor of the shared row.

The policies raise every tier's rate to 10^6 a second (their bound), so no call is refused.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from redis.asyncio import Redis

from benchmarks.environment import Environment, reachable_redis
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from tenantry.lifecycle import load_policies
from tenantry.lifecycle.quotas import RequestLimiter
from tenantry.lifecycle.shared_rate import SharedRate
from tenantry.tenants import TenantRegistry

__all__ = ["BENCHMARK"]

LOCAL = "request limit take, in-process bucket"
SHARED = "request limit take, shared in Redis (one EVALSHA)"
PING = "redis-py PING"
OPERATIONS = (LOCAL, SHARED, PING)

TENANT = "bench-quotas"
RATES = "".join(
    f"[{tier}]\nrequests_per_second = 1_000_000\n"
    for tier in ("free", "standard", "premium", "enterprise")
)


async def run(env: Environment, plan: Plan) -> list[Row]:
    url = await reachable_redis("quotas benchmarks")
    if url is None:
        return []
    registry = TenantRegistry(env.db)
    await registry.create(TENANT, "Request limit bench")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tiers.toml"
        path.write_text(RATES)
        tiers = load_policies(path)
    redis = Redis.from_url(url)
    local = RequestLimiter(registry, tiers)
    shared = RequestLimiter(registry, tiers, redis=redis)
    try:
        for limiter in (local, shared):
            await limiter.take(TENANT)  # the tier read, once
        assert await redis.exists(SharedRate.key(TENANT))

        async def take_local() -> None:
            await local.take(TENANT)

        async def take_shared() -> None:
            await shared.take(TENANT)

        async def ping() -> None:
            await redis.ping()

        cases = [
            Case(LOCAL, take_local),
            Case(SHARED, take_shared, peer=LOCAL),
            Case(PING, ping, peer=LOCAL),
        ]
        rows = await run_cases(cases, plan, module="quotas")
        assert shared.fallbacks == 0
        assert not local.refused
        assert not shared.refused
        return rows
    finally:
        await redis.delete(SharedRate.key(TENANT))
        await redis.aclose()


BENCHMARK = Benchmark(name="quotas", operations=OPERATIONS, run=run)

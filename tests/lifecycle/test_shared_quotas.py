"""A tenant's requests a second shared through Redis by every process: two limiters (two
processes) on one Redis admit the tenant's rate in all, another tenant untouched; with Redis
stopped each falls back to its own bucket without an error, and shares again once it is back."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from tenantry.config import Settings
from tenantry.connections.breaker import BreakerState, CircuitBreaker
from tenantry.db.engine import Database
from tenantry.errors import RateLimited
from tenantry.lifecycle import load_policies
from tenantry.lifecycle.quotas import RequestLimiter
from tenantry.lifecycle.shared_rate import SharedRate
from tenantry.tenants import TenantRegistry
from tests.conftest import TOKEN, NewTenant, RedisProcess, require_redis
from tests.support.service import running_app, with_tiers

FREE_RATE = 20  # the shipped policies' free tier


async def admitted(limiter: RequestLimiter, tenant: str) -> bool:
    try:
        await limiter.take(tenant)
    except RateLimited as refused:
        waits.append(refused.retry_after)
        return False
    return True


#: Every Retry-After the limiters answered (checked by the tests that refuse).
waits: list[float] = []


async def test_two_processes_share_a_tenants_rate(db: Database, new_tenant: NewTenant) -> None:
    redis = Redis.from_url(require_redis())
    noisy, quiet = (await new_tenant()).id, (await new_tenant()).id
    registry, tiers = TenantRegistry(db), load_policies()
    one, two = (RequestLimiter(registry, tiers, redis=redis) for _ in range(2))
    try:
        assert one.shared
        counts = {id(one): 0, id(two): 0}
        start = time.monotonic()
        while time.monotonic() - start < 1.0:  # both flood the tenant, in turns, for a second
            for limiter in (one, two):
                counts[id(limiter)] += await admitted(limiter, noisy)
            await asyncio.sleep(0.001)
        elapsed = time.monotonic() - start
        total = sum(counts.values())
        # a second's burst, then the rate: in all, not each (each alone would admit as much)
        assert FREE_RATE * (1 + elapsed) * 0.8 <= total <= FREE_RATE * (1 + elapsed) + 1
        assert min(counts.values()) > 0
        assert one.refused[noisy] > 0
        assert two.refused[noisy] > 0
        assert all(0 < wait <= 1 / FREE_RATE + 0.01 for wait in waits)
        assert one.fallbacks == two.fallbacks == 0
        for _ in range(FREE_RATE):  # another tenant: its whole burst, from either process
            await two.take(quiet)
        assert quiet not in two.refused
        assert await redis.pttl(SharedRate.key(noisy)) > 0  # expires once the bucket is full
    finally:
        await redis.aclose()


async def test_redis_stopped_falls_back_to_the_process_bucket(
    db: Database, new_tenant: NewTenant, redis_process: RedisProcess
) -> None:
    tenant = (await new_tenant()).id
    breaker = CircuitBreaker("redis", minimum_calls=5, window_size=20, open_duration=0.3)
    redis = Redis.from_url(redis_process.url, socket_timeout=0.2, socket_connect_timeout=0.2)
    limiter = RequestLimiter(  # the process's bucket on a still clock: no refill meanwhile
        TenantRegistry(db), load_policies(), redis=redis, breaker=breaker, clock=lambda: 100.0
    )
    try:
        await limiter.take(tenant)
        assert await redis.exists(SharedRate.key(tenant))
        redis_process.stop()
        with capture_logs() as logs:
            # the process's own bucket: a second's burst admitted, then refused; never an error
            results = [await admitted(limiter, tenant) for _ in range(FREE_RATE + 5)]
        assert results.count(True) == FREE_RATE
        assert limiter.fallbacks == FREE_RATE + 5
        assert breaker.state is BreakerState.OPEN  # Redis is no longer asked at each request
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
            "request limits per process: Redis does not answer"
        ]
        redis_process.start()
        await asyncio.sleep(0.35)  # the breaker half-opens: Redis is asked again
        fallbacks = limiter.fallbacks
        await admitted(limiter, tenant)
        assert limiter.fallbacks == fallbacks
        assert await redis.exists(SharedRate.key(tenant))  # shared again
    finally:
        await redis.aclose()


async def test_the_service_shares_its_limit_through_its_redis(
    settings: Settings, tmp_path: Path, db: Database
) -> None:
    """The app's limiter uses the service's Redis: a tenant's bucket emptied by another process
    refuses the app's next request."""
    url = require_redis()
    tiers = with_tiers(tmp_path, "[free]\nrequests_per_second = 3\n")
    redis = Redis.from_url(url)
    async with running_app(settings, tier_policies=tiers, redis_url=url) as (state, client):
        tenant = f"sq-{uuid.uuid4().hex[:10]}"
        await state.tenants.create(tenant, "Shared")
        other = RequestLimiter(TenantRegistry(db), load_policies(tiers), redis=redis)
        try:
            for _ in range(3):  # another process takes the tenant's whole burst
                await other.take(tenant)
            answer = await client.get("/settings", headers={**TOKEN, "X-Tenant-ID": tenant})
            assert answer.status_code == 429
            assert answer.headers["retry-after"] == "1"
        finally:
            await redis.aclose()


@pytest.mark.parametrize("rate", [3.0, 500.0])
async def test_a_burst_of_one_seconds_requests_then_refused(rate: float) -> None:
    """The script's arithmetic: ``rate`` requests admitted at once; at 3 a second the fourth
    is told to wait about a third of a second (at 500 the burst's own time refills some)."""
    redis = Redis.from_url(require_redis())
    shared = SharedRate(redis, CircuitBreaker("redis"))
    tenant = f"b-{uuid.uuid4().hex[:10]}"
    try:
        answers = [await shared.take(tenant, rate) for _ in range(int(rate))]
        assert answers.count(0.0) == rate
        if rate < 100:
            wait = await shared.take(tenant, rate)
            assert wait is not None
            assert 0.9 / rate < wait <= 1 / rate
    finally:
        await redis.aclose()

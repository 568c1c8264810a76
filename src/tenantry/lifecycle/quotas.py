"""The tier quotas the service enforces from the tier policies.

:class:`RequestLimiter` holds each tenant to its tier's ``requests_per_second``: a token bucket
per tenant, refilled at that rate and holding at most one second of it (so a burst of one
second's requests passes at once, and a tenant sending more waits). A request over the limit
is refused before any work (:class:`~tenantry.errors.RateLimited`: 429 with ``Retry-After``)
and counted (:attr:`RequestLimiter.refused`, in this process).

Given a Redis client (the service's, when ``TENANTRY_REDIS_URL`` is set), the bucket is kept in
Redis and shared by every process of the service (``shared_rate.py``: one atomic round trip a
request), so ``N`` processes give a tenant its rate in all, not ``N`` times it. When Redis fails
or its breaker is open, the request takes a token from this process's bucket instead (fail
open to the per-process limit: Redis being away never refuses a request), counted in
:attr:`RequestLimiter.fallbacks` and logged once each time the limit stops being shared. Without
Redis the limit is per process: with ``N`` processes a tenant gets up to ``N`` times its rate.

A tenant's tier is read from the registry and remembered for :data:`TIER_TTL` seconds (at most
:data:`MAX_TENANTS` tenants; the least recently seen go first), so a change of tier applies
within that time; :meth:`RequestLimiter.forget` applies it at once (the app calls it on every
change of a tenant's status).

The same cached tiers give two more quotas: :meth:`RequestLimiter.metric_series` (the monitoring
aggregator's per-tenant cap on its series, on its hot path: no I/O; for a tenant whose tier is
not known here yet, having sent no request to this process, the strictest of the tiers' caps
while a read of its tier runs in the background, started once, at most
:data:`MAX_TIER_READS` at a time, a failed one tried again after :data:`TIER_TTL`) and
:meth:`RequestLimiter.sessions` (the session manager's cap on a tenant's live sessions), and
:meth:`RequestLimiter.policy` (the metadata manager's storage limit). Each time it reads a
tenant's tier it calls ``on_tier(tenant_id, policy)`` when given: the app sets the tenant's
in-process cache budget there (``cache_bytes``), so the cache learns a tenant's budget at its
first request, and no cache read or write ever asks the database.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, NoReturn

from tenantry.connections.breaker import CircuitBreaker
from tenantry.connections.redis_backend import RedisClient
from tenantry.errors import RateLimited
from tenantry.lifecycle.policies import TierPolicy
from tenantry.lifecycle.shared_rate import SharedRate
from tenantry.logging import get_logger
from tenantry.tenants import TenantRegistry, TenantTier

__all__ = ["MAX_TENANTS", "MAX_TIER_READS", "TIER_TTL", "RequestLimiter"]

_log = get_logger("tenantry.lifecycle")

#: Seconds a tenant's tier is trusted without reading the registry again.
TIER_TTL: Final = 30.0
#: Tenants whose bucket and tier are kept at once.
MAX_TENANTS: Final = 100_000
#: Background reads of tiers (for :meth:`RequestLimiter.metric_series`) running at once.
MAX_TIER_READS: Final = 32


@dataclass(slots=True)
class _Bucket:
    tier: TenantTier
    rate: float
    tokens: float
    at: float
    tier_read_at: float


class RequestLimiter:
    """See the module docstring."""

    def __init__(
        self,
        registry: TenantRegistry,
        policies: Mapping[TenantTier, TierPolicy],
        *,
        clock: Callable[[], float] = time.monotonic,
        on_tier: Callable[[str, TierPolicy], None] | None = None,
        redis: RedisClient | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        """``redis`` (guarded by ``breaker``, a breaker of its own if not given) shares the
        requests-a-second buckets with every process using it."""
        self._registry = registry
        self._shared = (
            None if redis is None else SharedRate(redis, breaker or CircuitBreaker("redis"))
        )
        #: Requests counted in this process's bucket because Redis did not answer.
        self.fallbacks = 0
        self._falling_back = False
        self._strictest_series = min(p.metric_series for p in policies.values())
        self._reads: dict[str, asyncio.Task[None]] = {}
        self._failed_reads: OrderedDict[str, float] = OrderedDict()
        #: Background reads of tiers started (by :meth:`metric_series`).
        self.background_reads = 0
        self._on_tier = on_tier
        self._policies = policies
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        #: Requests refused, by tenant (for metrics and tests).
        self.refused: dict[str, int] = {}

    def forget(self, tenant_id: str) -> None:
        """Read the tenant's tier again at its next request."""
        self._buckets.pop(tenant_id, None)

    def cached_tier(self, tenant_id: str) -> TenantTier | None:
        """The tenant's tier as last read (None if not read yet): no I/O, for hot paths."""
        bucket = self._buckets.get(tenant_id)
        return None if bucket is None else bucket.tier

    async def tier(self, tenant_id: str) -> TenantTier:
        """The tenant's tier, read from the registry at most every :data:`TIER_TTL` seconds."""
        return (await self._bucket(tenant_id, self._clock())).tier

    def metric_series(self, tenant_id: str) -> int:
        """The tenant's tier's ``metric_series`` if its tier is known here; else the strictest
        tier's, and a read of its tier started in the background (see the module docstring):
        the aggregator's ``series_limit``, on its hot path."""
        tier = self.cached_tier(tenant_id)
        if tier is None:
            self._read_tier_soon(tenant_id)
            return self._strictest_series
        return self._policies[tier].metric_series

    @property
    def pending_reads(self) -> int:
        """Background reads of tiers running."""
        return len(self._reads)

    def _read_tier_soon(self, tenant_id: str) -> None:
        if tenant_id in self._reads or len(self._reads) >= MAX_TIER_READS:
            return
        failed = self._failed_reads.get(tenant_id)
        if failed is not None and self._clock() - failed < TIER_TTL:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): the next call on one starts it
            return
        self.background_reads += 1
        task = loop.create_task(self._read_tier(tenant_id), context=contextvars.Context())
        self._reads[tenant_id] = task
        task.add_done_callback(lambda _: self._reads.pop(tenant_id, None))

    async def _read_tier(self, tenant_id: str) -> None:
        try:
            await self._bucket(tenant_id, self._clock())
        except Exception as exc:  # noqa: BLE001 - an unknown tenant or a database away: retried
            self._failed_reads[tenant_id] = self._clock()
            while len(self._failed_reads) > MAX_TENANTS:
                self._failed_reads.popitem(last=False)
            _log.debug("tier read failed", tenant=tenant_id, error=type(exc).__name__)
        else:
            self._failed_reads.pop(tenant_id, None)

    async def close(self) -> None:
        """Cancel the background reads of tiers still running."""
        reads = list(self._reads.values())
        for task in reads:
            task.cancel()
        await asyncio.gather(*reads, return_exceptions=True)

    async def policy(self, tenant_id: str) -> TierPolicy:
        """The policy of ``tenant_id``'s tier (read from the registry at most every
        :data:`TIER_TTL` seconds): for the app's other quotas, as its metadata storage limit."""
        return self._policies[await self.tier(tenant_id)]

    async def sessions(self, tenant_id: str) -> int:
        """The tenant's tier's ``sessions``: the session manager's ``tenant_limit``."""
        return self._policies[await self.tier(tenant_id)].sessions

    async def _bucket(self, tenant_id: str, now: float) -> _Bucket:
        bucket = self._buckets.get(tenant_id)
        if bucket is None or now - bucket.tier_read_at > TIER_TTL:
            # read in a context of its own: a quota asked inside a tenant's open transaction
            # (a workflow step writing metadata) must not join it with a registry read
            read = asyncio.create_task(self._registry.get(tenant_id), context=contextvars.Context())
            tier = (await read).tier
            policy = self._policies[tier]
            if self._on_tier is not None:
                self._on_tier(tenant_id, policy)
            rate = float(policy.requests_per_second)
            if bucket is None:
                bucket = _Bucket(tier, rate, rate, now, now)
            else:
                bucket.tier, bucket.rate, bucket.tier_read_at = tier, rate, now
            self._buckets[tenant_id] = bucket
        self._buckets.move_to_end(tenant_id)
        while len(self._buckets) > MAX_TENANTS:
            self._buckets.popitem(last=False)
        return bucket

    @property
    def shared(self) -> bool:
        """Whether the buckets are kept in Redis (when it answers)."""
        return self._shared is not None

    async def take(self, tenant_id: str) -> None:
        """Count one request of ``tenant_id``; :class:`~tenantry.errors.RateLimited` past its
        tier's rate."""
        now = self._clock()
        bucket = await self._bucket(tenant_id, now)
        if self._shared is not None:
            wait = await self._shared.take(tenant_id, bucket.rate)
            if wait is not None:
                if self._falling_back:
                    self._falling_back = False
                    _log.info("request limits shared again", fallbacks=self.fallbacks)
                if wait > 0.0:
                    self._refuse(tenant_id, bucket.rate, wait)
                return
            self.fallbacks += 1
            if not self._falling_back:
                self._falling_back = True
                _log.warning(
                    "request limits per process: Redis does not answer", fallbacks=self.fallbacks
                )
        bucket.tokens = min(bucket.rate, bucket.tokens + (now - bucket.at) * bucket.rate)
        bucket.at = now
        if bucket.tokens < 1.0:
            self._refuse(tenant_id, bucket.rate, (1.0 - bucket.tokens) / bucket.rate)
        bucket.tokens -= 1.0

    def _refuse(self, tenant_id: str, rate: float, wait: float) -> NoReturn:
        self.refused[tenant_id] = self.refused.get(tenant_id, 0) + 1
        raise RateLimited(
            f"tenant {tenant_id!r} sends more than {rate:g} requests a second, its tier's limit",
            retry_after=wait,
        )

"""A tenant's requests a second counted in Redis, so that every process of the service shares it.

One atomic round trip a request: :data:`SCRIPT` (``EVALSHA``) is GCRA, the token bucket of
:class:`~tenantry.lifecycle.quotas.RequestLimiter` kept as one number, the bucket's theoretical
arrival time (TAT): a request is admitted when ``max(TAT, now) + 1/rate - 1 s <= now`` (a burst
of one second's requests, then one every ``1/rate`` seconds), and TAT moves by ``1/rate``; a
refused one learns how long until it would be admitted (``Retry-After``). ``now`` is Redis's own
clock (``TIME``, from 2023-11-14 so that a double keeps under a microsecond), so processes on
hosts whose clocks differ count alike. The key is ``tq:{<tenant>}:rps`` (the cache's hash tag,
``cache.l2.tenant_key``: one Redis Cluster slot a tenant), expiring once its bucket is full.

Redis trouble never refuses a request: a failed call (or one the ``redis`` breaker refuses)
answers ``None``, and the limiter counts it and falls back to its in-process bucket.
"""

from __future__ import annotations

from typing import Final

from redis.exceptions import RedisError

from tenantry.cache.l2 import tenant_key
from tenantry.connections.breaker import CircuitBreaker
from tenantry.connections.redis_backend import RedisClient
from tenantry.errors import CircuitOpen

__all__ = ["SCRIPT", "SharedRate"]

#: KEYS[1] the tenant's key; ARGV[1] its rate (requests a second). Answers 0 when admitted,
#: else the microseconds until it would be (an integer: Redis truncates Lua's numbers).
SCRIPT: Final = """
local rate = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1700000000) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local after = tat + 1 / rate
local wait = after - 1 - now
if wait > 0.0000001 then
  return math.max(1, math.ceil(wait * 1000000))
end
redis.call('SET', KEYS[1], string.format('%.9f', after), 'PX', math.ceil((after - now) * 1000) + 1)
return 0
"""
#: Redis errors, and a dead socket or timeout underneath redis-py.
_FAILURES = (RedisError, OSError, TimeoutError)


class SharedRate:
    """The shared buckets on ``redis``, each call guarded by ``breaker``."""

    def __init__(self, redis: RedisClient, breaker: CircuitBreaker) -> None:
        self.redis = redis
        self.breaker = breaker
        self._script = redis.register_script(SCRIPT)

    @staticmethod
    def key(tenant_id: str) -> bytes:
        return tenant_key(b"tq", tenant_id, b"rps")

    async def take(self, tenant_id: str, rate: float) -> float | None:
        """0.0 when one request of ``tenant_id`` is admitted at ``rate``, the seconds to wait
        when refused, None when Redis did not answer (failed, or its breaker open)."""
        try:
            answer = await self.breaker.call(
                lambda: self._script(keys=[self.key(tenant_id)], args=[repr(rate)])
            )
        except (CircuitOpen, *_FAILURES):
            return None
        return int(answer) / 1_000_000

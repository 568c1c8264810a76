"""The Redis member: one ``redis.asyncio`` client over a blocking connection pool.

The pool holds up to ``max_size`` connections and makes a caller wait (up to the acquire timeout)
rather than fail when all are in use; the manager's :class:`~.pools.PoolGate` in front of it
adapts how many may be used at once. Pre-ping is redis-py's ``health_check_interval``: a
connection idle for longer is PINGed before it is used. redis-py's own retries are turned off
(``Retry(NoBackoff(), 0)``): retries belong to the manager, where the retry budget and the
breaker see them; otherwise one failed command could be retried 3 x 3 times.

Socket timeouts are short (1 s by default): a Redis call that takes longer is failing, and the
breaker should hear about it instead of callers piling up.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tenantry.connections.backends import BreakerConfig, Member, Pool, PoolOptions
from tenantry.connections.pools import PoolLimits

__all__ = ["RedisMember", "redis_failure"]


def redis_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is Redis's fault: no connection, a timeout, a server loading or gone."""
    return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError | TimeoutError)


class RedisMember(Member):
    """Redis as a member with its own pool; ``client`` is what the cache uses."""

    kind = "redis"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        limits: PoolLimits,
        breaker: BreakerConfig,
        pooling: PoolOptions | None = None,
        socket_timeout: float = 1.0,
        connect_timeout: float = 1.0,
        health_check_interval: float = 30.0,
        **member: Any,
    ) -> None:
        super().__init__(name, role="cache", breaker=breaker, **member)
        self.url = url
        self.pool = Pool(name, limits, pooling, clock=self.clock)
        self.connection_pool: BlockingConnectionPool = BlockingConnectionPool.from_url(
            url,
            max_connections=limits.max_size,
            timeout=self.pool.options.acquire_timeout,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            health_check_interval=health_check_interval,
            retry=Retry(NoBackoff(), 0),
        )
        self.client: Redis = Redis.from_pool(self.connection_pool)

    async def probe(self) -> None:
        await self.client.ping()

    def driver_pool(self) -> dict[str, int]:
        """redis-py's counts of idle and in-use connections."""
        counts = self.connection_pool.get_connection_count()
        idle, in_use = (int(counts[0][0]), int(counts[1][0])) if len(counts) == 2 else (0, 0)
        return {"idle": idle, "checked_out": in_use, "size": self.connection_pool.max_connections}

    def snapshot(self) -> dict[str, object]:
        return {
            **super().snapshot(),
            "pool": {**self.pool.snapshot(), "driver": self.driver_pool()},
        }

    async def close(self) -> None:
        await self.client.aclose()  # closes the pool too (from_pool hands it over)

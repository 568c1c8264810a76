"""The Redis member: one ``redis.asyncio`` client over a blocking connection pool.

The pool holds up to ``max_size`` connections and makes a caller wait (up to the acquire timeout)
rather than fail when all are in use; the manager's :class:`~.pools.PoolGate` in front of it
adapts how many may be used at once. Pre-ping is redis-py's ``health_check_interval``: a
connection idle for longer is PINGed before it is used. redis-py's own retries are turned off
(``Retry(NoBackoff(), 0)``): retries belong to the manager, where the retry budget and the
breaker see them; otherwise one failed command could be retried 3 x 3 times.

Socket timeouts are short (1 s by default): a Redis call that takes longer is failing, and the
breaker should hear about it instead of callers piling up.

With ``cluster=True`` (``REDIS_CLUSTER_ENABLED``) the client is a ``redis.asyncio.RedisCluster``
(:class:`~.redis_cluster.GatedCluster`) that discovers the cluster from the URL's node (a seed):
the same timeouts, health-check interval and no-retry policy apply (redirections, ``MOVED``/
``ASK``, are still followed: they are routing, not retries), and up to ``max_size`` calls are in
flight at once, the others waiting up to the acquire timeout, as on one server; each node's pool
holds up to ``max_size + 1`` connections. The health check PINGs every master.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tenantry.connections.backends import BreakerConfig, Member, Pool, PoolOptions
from tenantry.connections.pools import PoolLimits
from tenantry.connections.redis_cluster import GatedCluster

__all__ = ["RedisClient", "RedisMember", "redis_failure"]

#: What every Redis user gets: one server's client, or a cluster's.
RedisClient: TypeAlias = Redis | RedisCluster


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
        cluster: bool = False,
        **member: Any,
    ) -> None:
        super().__init__(name, role="cache", breaker=breaker, **member)
        self.url = url
        self.pool = Pool(name, limits, pooling, clock=self.clock)
        self.cluster = cluster
        self.connection_pool: BlockingConnectionPool | None = None
        self.client: RedisClient
        if cluster:
            self.client = GatedCluster.from_url(
                url,
                gate_size=limits.max_size,
                gate_timeout=self.pool.options.acquire_timeout,
                max_connections=limits.max_size + 1,  # + a shard subscription's
                socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
                health_check_interval=health_check_interval,
                retry=Retry(NoBackoff(), 0),
            )
        else:
            self.connection_pool = BlockingConnectionPool.from_url(
                url,
                max_connections=limits.max_size,
                timeout=self.pool.options.acquire_timeout,
                socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
                health_check_interval=health_check_interval,
                retry=Retry(NoBackoff(), 0),
            )
            self.client = Redis.from_pool(self.connection_pool)

    async def probe(self) -> None:
        if isinstance(self.client, RedisCluster):
            await self.client.ping(target_nodes=RedisCluster.PRIMARIES)
        else:
            await self.client.ping()

    def driver_pool(self) -> dict[str, int]:
        """redis-py's counts of idle and in-use connections (summed over a cluster's nodes)."""
        if isinstance(self.client, RedisCluster):
            nodes = self.client.get_nodes()
            opened = sum(len(n._connections) for n in nodes)
            idle = sum(len(n._free) for n in nodes)
            size = sum(n.max_connections for n in nodes)
            return {"idle": idle, "checked_out": opened - idle, "size": size}
        pool = self.client.connection_pool
        counts = pool.get_connection_count()
        idle, in_use = (int(counts[0][0]), int(counts[1][0])) if len(counts) == 2 else (0, 0)
        return {"idle": idle, "checked_out": in_use, "size": pool.max_connections}

    def snapshot(self) -> dict[str, object]:
        return {
            **super().snapshot(),
            "pool": {**self.pool.snapshot(), "driver": self.driver_pool()},
        }

    async def close(self) -> None:
        await self.client.aclose()  # closes the pool too (from_pool hands it over)

"""A ``RedisCluster`` whose callers wait for a connection, as the single server's pool does.

redis-py's cluster keeps a plain pool per node that never waits: a command that finds all of a
node's ``max_connections`` in use fails at once (``MaxConnectionsError``). A burst of cache reads
(200 at once on a pool of 8, measured) then fails most of them and opens the ``redis`` breaker,
where the single server's ``BlockingConnectionPool`` makes them wait their turn.
:class:`GatedCluster` restores the wait: every command and pipeline first takes one of ``size``
slots (a semaphore, shared by the whole client), waiting up to ``timeout`` (the pool's acquire
timeout) and failing then with a connection error, as the blocking pool does. With at most
``size`` calls in flight, no node has more than ``size`` of them, so the nodes' pools, one
connection larger (a cache's shard subscription holds one for good), are never exhausted.

A call made inside another (a pipeline's redirected command, a script's ``SCRIPT LOAD``) does
not take a second slot: a context variable marks the task, and the tasks it starts, as holding
one.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import Any

from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterPipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException
from redis.typing import EncodableT

__all__ = ["GatedCluster"]

_holding: ContextVar[bool] = ContextVar("tenantry_redis_cluster_slot", default=False)


class GatedCluster(RedisCluster):
    """``RedisCluster`` with at most ``size`` calls in flight; see the module docstring."""

    def __init__(
        self, *args: Any, gate_size: int = 10, gate_timeout: float = 5.0, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.gate_size = gate_size
        self.gate_timeout = gate_timeout
        self._gate = asyncio.Semaphore(gate_size)

    async def _take(self) -> None:
        try:
            async with asyncio.timeout(self.gate_timeout):
                await self._gate.acquire()
        except TimeoutError:
            raise RedisConnectionError(
                f"no Redis Cluster connection free within {self.gate_timeout:g} s"
            ) from None

    async def execute_command(self, *args: EncodableT, **kwargs: Any) -> Any:
        if _holding.get():
            return await super().execute_command(*args, **kwargs)
        await self._take()
        token = _holding.set(True)
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            _holding.reset(token)
            self._gate.release()

    def pipeline(
        self, transaction: Any | None = None, shard_hint: Any | None = None
    ) -> ClusterPipeline:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return _GatedPipeline(self, transaction)  # type: ignore[abstract]  # as redis-py does

    @property
    def in_flight(self) -> int:
        """Calls holding a slot now."""
        return self.gate_size - self._gate._value


class _GatedPipeline(ClusterPipeline):
    """A pipeline of a :class:`GatedCluster`: its ``execute`` holds one slot."""

    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        client = self.cluster_client
        if _holding.get() or not isinstance(client, GatedCluster):
            return await super().execute(raise_on_error, allow_redirections)
        await client._take()
        token = _holding.set(True)
        try:
            return await super().execute(raise_on_error, allow_redirections)
        finally:
            _holding.reset(token)
            client._gate.release()

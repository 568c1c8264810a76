"""Distributed invalidation: every node drops its L1 copy when any node changes a key.

Messages go over one Redis pub/sub channel as msgpack: the sending node, the tenant, and the
keys, tags or "the whole tenant" to drop, with the send time so receivers measure the delay.
A node that lost its subscription cannot know what it missed, so on every (re)subscribe it drops
its whole L1 (it is only a cache); the listener reconnects with backoff on its own.

On a Redis Cluster the channel is a shard channel (``SPUBLISH``/``SSUBSCRIBE``): its messages go
to the master owning the channel's slot (and its replicas), not over the cluster bus to every
node as a classic ``PUBLISH`` would, and redis-py's cluster pub/sub follows the slot when it
moves (docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
from redis.asyncio import RedisCluster
from redis.exceptions import RedisError

from tenantry.connections.redis_backend import RedisClient
from tenantry.logging import get_logger

__all__ = ["Invalidation", "InvalidationBus"]

_log = get_logger("tenantry.cache")


@dataclass(slots=True)
class Invalidation:
    tenant: str
    keys: Sequence[str] = ()
    tags: Sequence[str] = ()
    whole_tenant: bool = False
    node: str = ""
    sent_at: float = field(default_factory=time.time)

    def pack(self) -> bytes:
        packed: bytes = msgpack.packb(
            [
                self.node,
                self.tenant,
                list(self.keys),
                list(self.tags),
                self.whole_tenant,
                self.sent_at,
            ]
        )
        return packed

    @classmethod
    def unpack(cls, data: bytes) -> Invalidation:
        node, tenant, keys, tags, whole, sent_at = msgpack.unpackb(data)
        return cls(tenant, keys, tags, whole, node, sent_at)


class InvalidationBus:
    """Publishes this node's invalidations and applies the other nodes' ones."""

    def __init__(
        self,
        redis: RedisClient,
        apply: Callable[[Invalidation], None],
        reset: Callable[[], None],
        *,
        channel: str = "tenantry:cache:invalidate",
    ) -> None:
        self.redis = redis
        self.sharded = isinstance(redis, RedisCluster)
        self.apply = apply
        self.reset = reset
        self.channel = channel
        self.node = uuid.uuid4().hex
        #: Seconds from publish on another node to applied here, most recent last.
        self.delays: deque[float] = deque(maxlen=1024)
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="tenantry-cache-invalidation")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def publish(self, message: Invalidation) -> None:
        """Send ``message`` (Redis errors propagate: the caller's breaker counts them)."""
        message.node = self.node
        if isinstance(self.redis, RedisCluster):
            await self.redis.spublish(self.channel, message.pack())
        else:
            await self.redis.publish(self.channel, message.pack())

    async def _listen(self) -> None:
        backoff = 0.05
        while True:
            pubsub: Any = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                if self.sharded:
                    await pubsub.ssubscribe(self.channel)
                    receive, kind = pubsub.get_sharded_message, "smessage"
                else:
                    await pubsub.subscribe(self.channel)
                    receive, kind = pubsub.get_message, "message"
                self.reset()  # whatever was published while we were away is unknown
                self.connected.set()
                backoff = 0.05
                while True:
                    message = await receive(timeout=1.0)
                    if message is not None and message.get("type") == kind:
                        self._receive(message["data"])
            except (RedisError, OSError, TimeoutError) as exc:
                self.connected.clear()
                _log.warning("cache invalidation channel lost", error=type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    await pubsub.aclose()

    def _receive(self, data: bytes) -> None:
        try:
            message = Invalidation.unpack(data)
        except (ValueError, TypeError, msgpack.UnpackException):
            _log.warning("malformed cache invalidation ignored")
            return
        if message.node == self.node:
            return
        self.apply(message)
        self.delays.append(max(0.0, time.time() - message.sent_at))

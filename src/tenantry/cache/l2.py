"""The Redis tier of the cache, behind a circuit breaker.

Every key is ``tc:{<tenant>}:<key>``. A tenant id cannot contain ``{``, ``}`` or ``:``, so no
key, whatever it contains, can name another tenant's namespace; the braces are a Redis Cluster
hash tag, which keeps a tenant's keys (and its tag sets) in one slot: on a Redis Cluster every
multi-key command here (MGET, SUNION, UNLINK, the pipeline of SET/SADD) stays on one node, and
only a tenant's flush (SCAN) goes to every master.

Redis trouble never reaches the caller: a failed or refused call records a failure on the
breaker and answers as a miss (reads) or does nothing (writes). The breaker decides when Redis
is tried again.
"""

from __future__ import annotations

import secrets
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio import RedisCluster
from redis.exceptions import RedisError

from tenantry.connections.breaker import CircuitBreaker
from tenantry.connections.redis_backend import RedisClient

__all__ = ["Envelope", "RedisTier", "tenant_key"]

_T = TypeVar("_T")
_HEADER = struct.Struct(">dd")  # fresh_until (epoch seconds), load time in seconds
#: Redis errors, and a dead socket or timeout underneath redis-py.
_FAILURES = (RedisError, OSError, TimeoutError)


def tenant_key(namespace: bytes, tenant: str, rest: bytes) -> bytes:
    """``<namespace>:{<tenant>}:<rest>``: the tenant's hash tag, so that all of a tenant's keys
    of a namespace (the cache's ``tc``, the shared request limit's ``tq``) sit in one slot."""
    return namespace + b":{" + tenant.encode() + b"}:" + rest


class Envelope:
    """A value as stored in Redis: when it stops being fresh, how long it took to load, bytes."""

    __slots__ = ("blob", "delta", "fresh_until")

    def __init__(self, blob: bytes, fresh_until: float, delta: float) -> None:
        self.blob, self.fresh_until, self.delta = blob, fresh_until, delta

    def pack(self) -> bytes:
        return _HEADER.pack(self.fresh_until, self.delta) + self.blob

    @classmethod
    def unpack(cls, data: bytes) -> Envelope:
        fresh_until, delta = _HEADER.unpack_from(data)
        return cls(data[_HEADER.size :], fresh_until, delta)


class RedisTier:
    """L2 operations; each one guarded by ``breaker`` and answered safely when Redis is away."""

    def __init__(
        self, redis: RedisClient, breaker: CircuitBreaker, *, timeout: float = 0.25
    ) -> None:
        self.redis = redis
        self.breaker = breaker
        self.timeout = timeout
        self.errors = 0

    @staticmethod
    def key(tenant: str, key: str) -> bytes:
        return tenant_key(b"tc", tenant, b"k:" + key.encode("utf-8", "surrogatepass"))

    @staticmethod
    def tag_key(tenant: str, tag: str) -> bytes:
        return tenant_key(b"tc", tenant, b"t:" + tag.encode("utf-8", "surrogatepass"))

    @staticmethod
    def lease_key(tenant: str, key: str) -> bytes:
        return tenant_key(b"tc", tenant, b"l:" + key.encode("utf-8", "surrogatepass"))

    async def guarded(self, call: Callable[[], Awaitable[_T]], fallback: _T) -> _T:
        """``await call()`` if the breaker admits it, else ``fallback``; failures also fall back."""
        breaker = self.breaker
        epoch = breaker.admit()
        if epoch is None:
            return fallback
        start = time.monotonic()
        try:
            result = await call()
        except _FAILURES:
            self.errors += 1
            breaker.settle(epoch, time.monotonic() - start, failed=True)
            return fallback
        except BaseException:
            breaker.cancel(epoch)  # cancelled: the call did not finish, record nothing
            raise
        breaker.settle(epoch, time.monotonic() - start, failed=False)
        return result

    async def get(self, tenant: str, key: str) -> Envelope | None:
        data: Any = await self.guarded(lambda: self.redis.get(self.key(tenant, key)), None)
        return Envelope.unpack(data) if data else None

    async def get_many(self, tenant: str, keys: Sequence[str]) -> list[Envelope | None]:
        names = [self.key(tenant, k) for k in keys]
        found: list[Any] = await self.guarded(lambda: self.redis.mget(names), [None] * len(keys))
        return [Envelope.unpack(d) if d else None for d in found]

    async def set_many(
        self, tenant: str, items: Sequence[tuple[str, Envelope]], ttl: float, tags: Sequence[str]
    ) -> None:
        ttl_ms = max(1, int(ttl * 1000))

        async def write() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, envelope in items:
                    pipe.set(self.key(tenant, key), envelope.pack(), px=ttl_ms)
                for tag in tags:
                    pipe.sadd(self.tag_key(tenant, tag), *(k for k, _ in items))
                    pipe.pexpire(self.tag_key(tenant, tag), ttl_ms, gt=True)
                    pipe.pexpire(self.tag_key(tenant, tag), ttl_ms, nx=True)
                await pipe.execute()

        await self.guarded(write, None)

    async def delete(self, tenant: str, keys: Sequence[str]) -> None:
        if keys:
            await self.guarded(lambda: self.redis.unlink(*(self.key(tenant, k) for k in keys)), 0)

    async def pop_tags(self, tenant: str, tags: Sequence[str]) -> set[str]:
        """Delete every key carrying one of ``tags`` (and the tag sets); return those keys."""

        async def pop() -> set[str]:
            names = [self.tag_key(tenant, t) for t in tags]
            members: set[Any] = await self.redis.sunion(names) if names else set()
            keys = {bytes(m).decode("utf-8", "surrogatepass") for m in members}
            if keys or names:
                await self.redis.unlink(*(self.key(tenant, k) for k in keys), *names)
            return keys

        return await self.guarded(pop, set())

    async def clear_tenant(self, tenant: str) -> int:
        """Delete the tenant's namespace; on a cluster every master is scanned (the keys sit in
        the tenant's slot, but a slot being migrated is on two masters at once)."""
        pattern = tenant_key(b"tc", tenant, b"*")
        redis = self.redis

        async def clear() -> int:
            removed = 0
            batch: list[bytes] = []
            names = (
                redis.scan_iter(match=pattern, count=1000, target_nodes=RedisCluster.PRIMARIES)
                if isinstance(redis, RedisCluster)
                else redis.scan_iter(match=pattern, count=1000)
            )
            async for name in names:
                batch.append(name)
                if len(batch) >= 1000:
                    removed += await self.redis.unlink(*batch)
                    batch.clear()
            if batch:
                removed += await self.redis.unlink(*batch)
            return removed

        return await self.guarded(clear, 0)

    async def acquire_lease(self, tenant: str, key: str, ttl: float) -> str | None:
        """A cross-process lease for loading ``key``: a token when won, else ``None``."""
        token = secrets.token_hex(8)
        won = await self.guarded(
            lambda: self.redis.set(
                self.lease_key(tenant, key), token, nx=True, px=max(1, int(ttl * 1000))
            ),
            None,
        )
        return token if won else None

    async def release_lease(self, tenant: str, key: str, token: str) -> None:
        script = (
            "if redis.call('get', KEYS[1]) == ARGV[1] then "
            "return redis.call('del', KEYS[1]) else return 0 end"
        )

        async def release() -> None:
            await self.redis.eval(script, 1, self.lease_key(tenant, key), token)

        await self.guarded(release, None)

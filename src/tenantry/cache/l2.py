"""The Redis tier of the cache, behind a circuit breaker.

Every key is ``tc:{<tenant>}:<key>``. A tenant id cannot contain ``{``, ``}`` or ``:``, so no
key, whatever it contains, can name another tenant's namespace; the braces are a Redis Cluster
hash tag, which keeps a tenant's keys (and its tag sets) in one slot: on a Redis Cluster every
multi-key command here (MGET, SUNION, UNLINK, the pipeline of SET/SADD) stays on one node, and
only a tenant's flush (SCAN) goes to every master.

**Fills and tombstones.** ``delete`` (and ``pop_tags``, ``clear_tenant``) leave a tombstone
instead of a bare delete: the key (or ``x:<tag>``, ``x:`` for the whole tenant) holds
``tomb:<Redis TIME in microseconds>`` for ``tombstone_ttl`` seconds, and reads treat it as a
miss. A *fill* (a value read from the source of truth, which may be stale by the time it is
written) carries the Redis time taken before its read (:meth:`RedisTier.now_us`, on the key's
node) and is written by one script that refuses when a tombstone of the key, of one of its tags
or of the tenant is not older than that time, or when the read took longer than
``tombstone_ttl`` (its tombstone may have expired). An authoritative ``set`` overwrites tombstones.

Redis trouble never reaches the caller: a failed or refused call records a failure on the
breaker and answers as a miss (reads) or does nothing (writes). The breaker decides when Redis
is tried again.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

from redis.asyncio import RedisCluster
from redis.exceptions import RedisError

from tenantry.connections.breaker import CircuitBreaker
from tenantry.connections.redis_backend import RedisClient
from tenantry.errors import CircuitOpen

__all__ = ["Envelope", "RedisTier", "tenant_key"]

_T = TypeVar("_T")
_HEADER = struct.Struct(">dd")  # fresh_until (epoch seconds), load time in seconds
#: Redis errors, and a dead socket or timeout underneath redis-py.
_FAILURES = (RedisError, OSError, TimeoutError)
TOMBSTONE: Final = b"tomb:"

#: Redis's time in microseconds (a string: exact), on the node of KEYS[1] (the tenant's slot).
_NOW = "local t = redis.call('TIME') return t[1] .. string.format('%06d', t[2])"
#: KEYS: the keys to tombstone; ARGV[1]: their lifetime in ms.
_TOMBSTONE = (
    "local t = redis.call('TIME') local v = 'tomb:' .. t[1] .. string.format('%06d', t[2]) "
    "for i = 1, #KEYS do redis.call('set', KEYS[i], v, 'PX', ARGV[1]) end return #KEYS"
)
#: KEYS: the key, the tenant's tombstone, then n tag tombstones and n tag sets.
#: ARGV: the token's Redis time in us, the value, its TTL in ms, the tombstones' lifetime in us, n.
#: 1: written; 0: refused (a tombstone at or after the token, or a read older than a tombstone).
_FILL = """
local t = redis.call('TIME')
local now = tonumber(t[1] .. string.format('%06d', t[2]))
local since = tonumber(ARGV[1])
if now - since >= tonumber(ARGV[4]) then return 0 end
local n = tonumber(ARGV[5])
for i = 1, n + 2 do
  local v = redis.call('get', KEYS[i])
  if v and string.sub(v, 1, 5) == 'tomb:' and tonumber(string.sub(v, 6)) >= since then
    return 0
  end
end
redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
for i = n + 3, n + n + 2 do
  redis.call('sadd', KEYS[i], string.sub(KEYS[1], string.find(KEYS[1], '}:k:', 1, true) + 4))
  redis.call('pexpire', KEYS[i], ARGV[3], 'GT')
  redis.call('pexpire', KEYS[i], ARGV[3], 'NX')
end
return 1
"""


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
        self,
        redis: RedisClient,
        breaker: CircuitBreaker,
        *,
        timeout: float = 0.25,
        tombstone_ttl: float = 10.0,
    ) -> None:
        self.redis = redis
        self.tombstone_ttl = tombstone_ttl
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

    @staticmethod
    def tombstone_key(tenant: str, tag: str | None) -> bytes:
        """The tombstone of ``tag`` (``None``: of the whole tenant)."""
        rest = b"" if tag is None else tag.encode("utf-8", "surrogatepass")
        return tenant_key(b"tc", tenant, b"x:" + rest)

    async def guarded(self, call: Callable[[], Awaitable[_T]], fallback: _T) -> _T:
        """``await call()`` if the breaker admits it, else ``fallback``; failures also fall back."""
        try:
            return await self.breaker.call(call)
        except CircuitOpen:
            return fallback
        except _FAILURES:
            self.errors += 1
            return fallback

    async def get(self, tenant: str, key: str) -> Envelope | None:
        data: Any = await self.guarded(lambda: self.redis.get(self.key(tenant, key)), None)
        return Envelope.unpack(data) if data and not data.startswith(TOMBSTONE) else None

    async def get_many(self, tenant: str, keys: Sequence[str]) -> list[Envelope | None]:
        names = [self.key(tenant, k) for k in keys]
        found: list[Any] = await self.guarded(lambda: self.redis.mget(names), [None] * len(keys))
        return [Envelope.unpack(d) if d and not d.startswith(TOMBSTONE) else None for d in found]

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
        """Tombstone ``keys``: reads miss, and fills read before now are refused."""
        if keys:
            await self.guarded(lambda: self._tombstone([self.key(tenant, k) for k in keys]), 0)

    async def _tombstone(self, names: Sequence[bytes]) -> int:
        if not names:
            return 0
        ttl_ms = max(1, int(self.tombstone_ttl * 1000))
        written: Any = await self.redis.eval(_TOMBSTONE, len(names), *names, ttl_ms)
        return int(written)

    async def now_us(self, tenant: str, key: str) -> int | None:
        """Redis's time in microseconds on ``key``'s node (a fill's token); ``None``: Redis away."""
        name = self.key(tenant, key)
        found: Any = await self.guarded(lambda: self.redis.eval(_NOW, 1, name), None)
        return None if found is None else int(found)

    async def fill(  # noqa: PLR0917 - the script's arguments
        self,
        tenant: str,
        key: str,
        envelope: Envelope,
        ttl: float,
        tags: Sequence[str],
        since_us: int,
    ) -> bool | None:
        """Write a value read since ``since_us`` unless a tombstone is as recent (True/False);
        ``None`` when Redis is away."""
        names = [
            self.key(tenant, key),
            self.tombstone_key(tenant, None),
            *(self.tombstone_key(tenant, t) for t in tags),
            *(self.tag_key(tenant, t) for t in tags),
        ]
        ttl_ms, tomb_us = max(1, int(ttl * 1000)), max(1, int(self.tombstone_ttl * 1_000_000))

        async def write() -> bool:
            args = (since_us, envelope.pack(), ttl_ms, tomb_us, len(tags))
            written: Any = await self.redis.eval(_FILL, len(names), *names, *args)
            return bool(written)

        return await self.guarded(write, None)

    async def pop_tags(self, tenant: str, tags: Sequence[str]) -> set[str]:
        """Delete every key carrying one of ``tags`` (and the tag sets); return those keys."""

        async def pop() -> set[str]:
            names = [self.tag_key(tenant, t) for t in tags]
            members: set[Any] = await self.redis.sunion(names) if names else set()
            keys = {bytes(m).decode("utf-8", "surrogatepass") for m in members}
            if names:
                await self.redis.unlink(*names)
            await self._tombstone(
                [
                    *(self.key(tenant, k) for k in keys),
                    *(self.tombstone_key(tenant, t) for t in tags),
                ]
            )
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
            await self._tombstone([self.tombstone_key(tenant, None)])  # after the scan
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

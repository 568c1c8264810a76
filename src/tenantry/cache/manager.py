"""CacheManager: a tenant-namespaced, two-tier cache with stampede control.

- **Namespacing.** Every call acts in the current tenant's namespace (``tenant_scope``); the
  tenant is never part of a caller's key, so no key can reach another tenant's entries.
- **Tiers.** L1 in process (:class:`~tenantry.cache.l1.TenantL1`: bytes-bounded W-TinyLFU with
  per-tenant budgets); L2 Redis when one is given (:class:`~tenantry.cache.l2.RedisTier`),
  behind a circuit breaker: when Redis is away, L1 and the loaders carry on without an error.
- **Loads.** ``get_or_set`` runs one load per key at a time in this process (single flight), a
  fill (see below: a load that began before a delete of its key is not cached), can
  take a cross-process lease in Redis, serves a stale value while one refresh runs, and refreshes
  early with probability rising towards expiry (XFetch, from the stored load time).
- **Fills.** ``fill_token`` before a read of the source of truth, ``fill`` after it: the value
  is cached unless the key (one of its tags, the tenant) was deleted or invalidated meanwhile, on
  this node (a bounded record of recent drops) or any other (tombstones in Redis, see ``l2``).
- **Invalidation.** ``set``/``delete``/``invalidate_tags``/``clear_tenant`` tell every other
  node to drop its L1 copy (Redis pub/sub), and the delay is measured.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import random
import time
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from tenantry.cache.invalidation import Invalidation, InvalidationBus
from tenantry.cache.l1 import TenantL1
from tenantry.cache.l1_types import Entry
from tenantry.cache.l2 import Envelope, RedisTier
from tenantry.cache.prefetch import NextKeyModel
from tenantry.cache.serde import Codec
from tenantry.cache.stats import CacheStats, Counters
from tenantry.connections.breaker import CircuitBreaker
from tenantry.connections.redis_backend import RedisClient
from tenantry.context import _current as _tenant_var  # the hot path reads it without a call
from tenantry.context import get_tenant, tenant_scope
from tenantry.errors import InvalidInput
from tenantry.logging import get_logger
from tenantry.tracing import traced

__all__ = ["CacheManager", "FillToken"]

_log = get_logger("tenantry.cache")
_MISSING: Final = object()
Loader = Callable[[], Awaitable[Any]]
_KEY_OVERHEAD = 64  # bytes charged per entry beyond its value, for the key and bookkeeping
_READ_BUFFER = 256  # the L1's read buffer, a constant for get's inlined hit
_monotonic = time.monotonic  # the L1's clock (TenantL1's default), read on the hot paths


@dataclass(frozen=True, slots=True)
class FillToken:
    """Taken before a read whose value is then offered to :meth:`CacheManager.fill`."""

    tenant: str
    key: str
    seq: int  # the drops recorded before it (this node)
    redis_us: int | None  # Redis's time (us) on the key's node; None: no L2 answer


#: Drops of keys and tags remembered for fills (older ones are folded into one floor).
_DROPS_KEPT = 20_000


@dataclass(slots=True)
class _Meta:
    fresh_until: float  # epoch seconds
    delta: float  # seconds the load took (XFetch)
    prefetched: bool = False
    #: Kept past ``fresh_until`` (a stale window). Without one, the L1's own expiry (on the
    #: monotonic clock, set to the same instant) is the freshness check, so a hit reads no clock.
    stale_window: bool = False


#: The metadata of every entry written without a stale window, a load time or a prefetch (all
#: that ``set`` writes): fresh for as long as L1 holds it. Shared, so a write allocates none.
_HELD_IS_FRESH: Final = _Meta(math.inf, 0.0)


@dataclass(frozen=True, slots=True)
class _Spec:
    """How to (re)load a key: the loader and what to store its value with."""

    loader: Loader
    ttl: float
    stale: float
    tags: tuple[str, ...]


@dataclass(slots=True)
class _TenantState:
    counters: Counters = field(default_factory=Counters)
    tags: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    model: NextKeyModel = field(default_factory=NextKeyModel)
    loaders: OrderedDict[str, _Spec] = field(default_factory=OrderedDict)


def _meta(entry: Entry[Any]) -> _Meta:
    meta = entry.meta
    if not isinstance(meta, _Meta):  # every entry is written by this module, with a _Meta
        raise TypeError("cache entry without metadata")
    return meta


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not 0 < len(key) <= 1024:
        raise InvalidInput("a cache key is a string of 1-1024 characters")
    return key


class CacheManager:
    """The cache of every tenant; methods act for the tenant of the current ``tenant_scope``."""

    def __init__(
        self,
        *,
        l1_bytes: int = 64 * 1024 * 1024,
        redis: RedisClient | None = None,
        breaker: CircuitBreaker | None = None,
        default_ttl: float = 300.0,
        stale_ttl: float = 0.0,
        compress_threshold: int = 1024,
        xfetch_beta: float = 1.0,
        prefetch: bool = False,
        lease_ttl: float = 5.0,
    ) -> None:
        if default_ttl <= 0 or stale_ttl < 0:
            raise InvalidInput("default_ttl must be > 0 and stale_ttl >= 0")
        self.l1: TenantL1[Any] = TenantL1(l1_bytes, read_buffer=_READ_BUFFER)
        self._segments = self.l1.segments  # for get's inlined L1 hit
        self.codec = Codec(compress_threshold)
        self.default_ttl = default_ttl
        self.stale_ttl = stale_ttl
        self.xfetch_beta = xfetch_beta
        self.prefetch = prefetch
        self.lease_ttl = lease_ttl
        self.l2: RedisTier | None = None
        self.bus: InvalidationBus | None = None
        if redis is not None:
            self.l2 = RedisTier(redis, breaker or CircuitBreaker("redis"))
            self.bus = InvalidationBus(redis, self._apply_remote, self._drop_all_l1)
        self._tenants: defaultdict[str, _TenantState] = defaultdict(_TenantState)
        self._inflight: dict[tuple[str, str], asyncio.Future[Any]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        #: Drops (delete, invalidation, clear) by (tenant, key, NUL + tag, or "" for the whole
        #: tenant) -> their sequence number; fills whose token predates one are refused.
        self._drops: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._drop_seq = 0
        self._drop_floor = 0  # every drop forgotten (or every L1 dropped) is at most this
        self.fills_refused = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening for other nodes' invalidations (when Redis is configured)."""
        if self.bus is not None:
            await self.bus.start()

    async def close(self) -> None:
        if self.bus is not None:
            await self.bus.stop()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    # -- reads -----------------------------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it is absent or expired."""
        tenant = _tenant_var.get()
        # The hot path: an L1 hit on an entry that is neither prefetched nor in a stale window,
        # TenantL1.get_entry's hit inline (each call is a cost here): the entry is live, it has
        # not expired on the L1's clock, and the read goes into its segment's read buffer, which
        # the L1 drains into its exact hit count. Anything else takes the general path below,
        # which does it all again through the L1's methods. A key of a bad length is never
        # cached, so it is checked on the miss path only; ``None`` (no tenant) has no segment.
        segment = self._segments.get(tenant)  # type: ignore[arg-type]
        if segment is not None:
            try:
                entry = segment.data.get(key)
            except TypeError:  # an unhashable key: refused below (a try costs nothing here)
                entry = None
            if entry is not None:
                meta: _Meta = entry.meta  # type: ignore[assignment] # written by _store_l1 only
                expires_at = entry.expires_at
                if (
                    expires_at is not None
                    and expires_at > _monotonic()
                    and (meta is _HELD_IS_FRESH or not (meta.prefetched or meta.stale_window))
                ):
                    reads = segment.reads
                    reads.append(entry)
                    if len(reads) >= _READ_BUFFER:
                        segment.drain()
                    return entry.value
        if tenant is None:
            tenant = get_tenant()  # raises TenantContextError
        if type(key) is not str:
            _check_key(key)  # raises InvalidInput
        # The general path: the L1 counts the hit and checks the hard expiry; only an entry with
        # a stale window needs the wall clock (see _Meta.stale_window).
        entry = self.l1.get_entry(tenant, key)
        if entry is not None:
            meta = _meta(entry)
            if meta.prefetched:
                meta.prefetched = False
                self._tenants[tenant].counters.prefetch_hits += 1
            if meta.stale_window and time.time() >= meta.fresh_until:
                return default  # in its stale window: only for get_or_set's refresh
            return entry.value
        _check_key(key)
        value, meta2 = await self._lookup(tenant, key)
        if value is _MISSING or (meta2 is not None and time.time() >= meta2.fresh_until):
            return default
        return value

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The present values among ``keys`` (absent ones are left out)."""
        tenant = get_tenant()
        wanted = [_check_key(k) for k in keys]
        found: dict[str, Any] = {}
        missing: list[str] = []
        now = time.time()
        state = self._tenants[tenant]
        stale = 0  # L1 hits in their stale window: counted as hits by the L1, as get() does
        for key in wanted:
            entry = self.l1.get_entry(tenant, key)
            if entry is None:
                missing.append(key)
            elif now < _meta(entry).fresh_until:
                found[key] = entry.value
            else:
                stale += 1
                missing.append(key)
        if missing and self.l2 is not None:
            for key, envelope in zip(missing, await self.l2.get_many(tenant, missing), strict=True):
                if envelope is not None and now < envelope.fresh_until:
                    state.counters.l2_hits += 1
                    found[key] = self._fill_l1(tenant, key, envelope, ())
        state.counters.misses += len(wanted) - len(found) - stale
        return found

    async def get_or_set(
        self,
        key: str,
        loader: Loader,
        ttl: float | None = None,
        *,
        stale_ttl: float | None = None,
        tags: Sequence[str] = (),
        lease: bool = False,
    ) -> Any:
        """The value of ``key``; on a miss, ``await loader()`` once (for all concurrent callers).

        With ``stale_ttl``, a value up to that many seconds past its TTL is served while one
        background refresh runs. With ``lease``, one process across the cluster loads it.
        """
        tenant = get_tenant()
        _check_key(key)
        spec = _Spec(loader, *self._ttls(ttl, stale_ttl), tuple(tags))
        state = self._tenants[tenant]
        if self.prefetch:
            state.loaders[key] = spec
            state.loaders.move_to_end(key)
            if len(state.loaders) > 10_000:
                state.loaders.popitem(last=False)
            state.model.observe(key)
        value, meta = await self._lookup(tenant, key)
        if value is not _MISSING and meta is not None:
            now = time.time()
            if now >= meta.fresh_until:
                state.counters.stale_served += 1
                self._refresh_later(tenant, key, spec)
            elif self._xfetch(meta, now):
                state.counters.early_refreshes += 1
                self._refresh_later(tenant, key, spec)
            self._prefetch_after(tenant, key)
            return value
        value = await self._load(tenant, key, spec, lease=lease)
        self._prefetch_after(tenant, key)
        return value

    # -- writes ----------------------------------------------------------------------------------

    async def set(
        self, key: str, value: Any, ttl: float | None = None, *, tags: Sequence[str] = ()
    ) -> None:
        """Store ``value`` for ``ttl`` seconds (the default TTL when None)."""
        if self.l2 is not None:
            await self.set_many({key: value}, ttl, tags=tags)
            return
        # L1 alone (no other node to tell): what set_many does for one key, without its lists.
        tenant = _tenant_var.get()
        if tenant is None:
            tenant = get_tenant()
        if type(key) is not str or not 0 < len(key) <= 1024:
            _check_key(key)
        if ttl is None:
            ttl = self.default_ttl
        elif not (ttl > 0 and math.isfinite(ttl)):
            self._ttls(ttl, 0.0)  # raises InvalidInput
        size = self.codec.size(value) + len(key) + _KEY_OVERHEAD  # refuses what cannot be cached
        # No stale window, no load time: the shared metadata, and the TTL on L1's clock alone.
        if self.l1.set(
            tenant, key, value, size, expires_at=_monotonic() + ttl, meta=_HELD_IS_FRESH
        ):
            state = self._tenants[tenant]  # also makes the tenant known to tenants()
            for tag in tags:
                state.tags[tag].add(key)

    @traced("cache.set")
    async def set_many(
        self, items: Mapping[str, Any], ttl: float | None = None, *, tags: Sequence[str] = ()
    ) -> None:
        tenant = get_tenant()
        ttl, _ = self._ttls(ttl, 0.0)
        encoded = [(_check_key(k), self.codec.encode(v)) for k, v in items.items()]
        fresh_until = time.time() + ttl
        envelopes = [(k, Envelope(blob, fresh_until, 0.0)) for k, blob in encoded]
        tag_tuple = tuple(tags)
        for key, envelope in envelopes:
            self._fill_l1(tenant, key, envelope, tag_tuple, value=items[key])
        if self.l2 is not None:
            await self.l2.set_many(tenant, envelopes, ttl, tag_tuple)
        if self.bus is not None:
            await self._broadcast(Invalidation(tenant, keys=[k for k, _ in encoded]))

    async def fill_token(self, key: str) -> FillToken:
        """A token to take *before* reading ``key``'s value from its source of truth."""
        tenant = get_tenant()
        _check_key(key)
        seq = self._drop_seq
        redis_us = None if self.l2 is None else await self.l2.now_us(tenant, key)
        return FillToken(tenant, key, seq, redis_us)

    async def fill(
        self,
        key: str,
        value: Any,
        token: FillToken,
        ttl: float | None = None,
        *,
        tags: Sequence[str] = (),
    ) -> bool:
        """Cache ``value``, read after ``token`` was taken, unless ``key`` (or one of ``tags``, or
        the tenant) was deleted or invalidated since, on any node; whether it was cached.

        Unlike :meth:`set` (a new value, which always wins), a fill may be stale by the time it is
        written: a refused fill caches nothing (the caller still has its value), and it tells no
        other node anything (it changes nothing they hold).
        """
        tenant = get_tenant()
        if token.tenant != tenant or token.key != _check_key(key):
            raise InvalidInput("a fill token is for the key and tenant it was taken for")
        ttl, _ = self._ttls(ttl, 0.0)
        tag_tuple = tuple(tags)
        if self._dropped_since(tenant, key, tag_tuple, token.seq):
            self.fills_refused += 1
            return False
        envelope = Envelope(self.codec.encode(value), time.time() + ttl, 0.0)
        if self.l2 is not None and token.redis_us is not None:
            written = await self.l2.fill(tenant, key, envelope, ttl, tag_tuple, token.redis_us)
            if written is False or self._dropped_since(tenant, key, tag_tuple, token.seq):
                self.fills_refused += 1  # (a drop that arrived meanwhile tombstoned L2 after it)
                return False
        self._fill_l1(tenant, key, envelope, tag_tuple, value=value)
        return True

    def _dropped(self, tenant: str, names: Iterable[str]) -> None:
        """Record drops of ``names`` (keys, NUL + tag, "" for the tenant) for :meth:`fill`."""
        self._drop_seq += 1
        seq, drops = self._drop_seq, self._drops
        for name in names:
            drops[(tenant, name)] = seq
            drops.move_to_end((tenant, name))
        while len(drops) > _DROPS_KEPT:
            _, forgotten = drops.popitem(last=False)
            self._drop_floor = max(self._drop_floor, forgotten)

    def _dropped_since(self, tenant: str, key: str, tags: tuple[str, ...], seq: int) -> bool:
        if self._drop_floor > seq:
            return True
        if self._drop_seq == seq:
            return False  # nothing dropped since the token (the common case)
        drops = self._drops
        names = (key, "", *("\0" + t for t in tags))
        return any(drops.get((tenant, name), 0) > seq for name in names)

    async def delete(self, key: str) -> None:
        tenant = get_tenant()
        _check_key(key)
        self._dropped(tenant, (key,))
        self.l1.delete(tenant, key)
        if self.l2 is not None:
            await self.l2.delete(tenant, [key])
        await self._broadcast(Invalidation(tenant, keys=[key]))

    async def invalidate_tags(self, *tags: str) -> int:
        """Drop every entry of the current tenant that carries one of ``tags``; returns a count."""
        tenant = get_tenant()
        state = self._tenants[tenant]
        keys: set[str] = set()
        for tag in tags:
            keys |= state.tags.pop(tag, set())
        if self.l2 is not None:
            keys |= await self.l2.pop_tags(tenant, tags)
        self._dropped(tenant, (*keys, *("\0" + t for t in tags)))
        for key in keys:
            self.l1.delete(tenant, key)
        await self._broadcast(Invalidation(tenant, keys=sorted(keys), tags=list(tags)))
        return len(keys)

    async def clear_tenant(self) -> int:
        """Drop every entry of the current tenant, on every tier and node."""
        tenant = get_tenant()
        self._dropped(tenant, ("",))
        removed = self.l1.clear_tenant(tenant)
        self._tenants[tenant].tags.clear()
        if self.l2 is not None:
            removed = max(removed, await self.l2.clear_tenant(tenant))
        await self._broadcast(Invalidation(tenant, whole_tenant=True))
        return removed

    def stats(self, tenant: str | None = None) -> CacheStats:
        """Counters of ``tenant`` (default: the current one)."""
        tenant = tenant or get_tenant()
        l1 = self.l1.stats(tenant)
        delays = sorted(self.bus.delays) if self.bus is not None else []
        return CacheStats.combine(tenant, self._tenants[tenant].counters, l1, delays)

    def tenants(self) -> list[str]:
        return list(self._tenants)

    # -- internals -------------------------------------------------------------------------------

    def _ttls(self, ttl: float | None, stale: float | None) -> tuple[float, float]:
        ttl = self.default_ttl if ttl is None else ttl
        stale = self.stale_ttl if stale is None else stale
        if not (ttl > 0 and math.isfinite(ttl)) or not (stale >= 0 and math.isfinite(stale)):
            raise InvalidInput("ttl must be a positive number of seconds, stale_ttl >= 0")
        return float(ttl), float(stale)

    def _xfetch(self, meta: _Meta, now: float) -> bool:
        if meta.delta <= 0:
            return False
        return now - meta.delta * self.xfetch_beta * math.log(random.random()) >= meta.fresh_until  # noqa: S311

    @traced("cache.lookup")
    async def _lookup(self, tenant: str, key: str) -> tuple[Any, _Meta | None]:
        state = self._tenants[tenant]
        entry = self.l1.get_entry(tenant, key)
        if entry is not None:
            meta = _meta(entry)
            if meta.prefetched:
                meta.prefetched = False
                state.counters.prefetch_hits += 1
            return entry.value, meta
        if self.l2 is not None:
            envelope = await self.l2.get(tenant, key)
            if envelope is not None:
                state.counters.l2_hits += 1
                value = self._fill_l1(tenant, key, envelope, ())
                return value, _Meta(envelope.fresh_until, envelope.delta)
        state.counters.misses += 1
        return _MISSING, None

    def _fill_l1(
        self,
        tenant: str,
        key: str,
        envelope: Envelope,
        tags: tuple[str, ...],
        *,
        value: Any = _MISSING,
        stale: float = 0.0,
        prefetched: bool = False,
    ) -> Any:
        if value is _MISSING:
            value = self.codec.decode(envelope.blob)
        self._store_l1(
            tenant,
            key,
            value,
            len(envelope.blob),
            envelope.fresh_until,
            envelope.delta,
            tags,
            stale=stale,
            prefetched=prefetched,
        )
        return value

    def _store_l1(  # noqa: PLR0917 - every write's path: positional is faster
        self,
        tenant: str,
        key: str,
        value: Any,
        blob_size: int,
        fresh_until: float,
        delta: float,
        tags: tuple[str, ...],
        stale: float = 0.0,
        *,
        prefetched: bool = False,
    ) -> None:
        """Put ``value`` (``blob_size`` bytes serialized) in L1 until ``fresh_until + stale``."""
        remaining = fresh_until + stale - time.time()
        if remaining > 0:
            if stale > 0 or delta > 0 or prefetched:
                meta = _Meta(fresh_until, delta, prefetched, stale > 0)
            else:
                meta = _HELD_IS_FRESH
            size = blob_size + len(key) + _KEY_OVERHEAD
            if self.l1.set(
                tenant, key, value, size, expires_at=time.monotonic() + remaining, meta=meta
            ):
                state = self._tenants[tenant]  # also makes the tenant known to tenants()
                for tag in tags:
                    state.tags[tag].add(key)

    async def _load(
        self, tenant: str, key: str, spec: _Spec, *, lease: bool = False, prefetched: bool = False
    ) -> Any:
        flight = self._inflight.get((tenant, key))
        if flight is not None:
            return await asyncio.shield(flight)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[(tenant, key)] = future
        try:
            value = await self._load_once(tenant, key, spec, lease=lease, prefetched=prefetched)
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # mark retrieved: followers may or may not be waiting
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._inflight[(tenant, key)]

    async def _load_once(
        self, tenant: str, key: str, spec: _Spec, *, lease: bool, prefetched: bool
    ) -> Any:
        token = None
        if lease and self.l2 is not None:
            token = await self.l2.acquire_lease(tenant, key, self.lease_ttl)
            if token is None:
                envelope = await self._await_other_loader(tenant, key)
                if envelope is not None:
                    return self._fill_l1(tenant, key, envelope, spec.tags, stale=spec.stale)
        counters = self._tenants[tenant].counters
        # A load is a fill: what it read is cached unless the key was dropped since (see fill).
        seq = self._drop_seq
        since = None if self.l2 is None else await self.l2.now_us(tenant, key)
        start = time.perf_counter()
        try:
            value = await spec.loader()
            delta = time.perf_counter() - start
            counters.loads += 1
            counters.load_seconds += delta
            envelope = Envelope(self.codec.encode(value), time.time() + spec.ttl, delta)
            if self._dropped_since(tenant, key, spec.tags, seq):
                self.fills_refused += 1
                return value
            if self.l2 is not None and since is not None:
                ttl = spec.ttl + spec.stale
                written = await self.l2.fill(tenant, key, envelope, ttl, spec.tags, since)
                if written is False or self._dropped_since(tenant, key, spec.tags, seq):
                    self.fills_refused += 1
                    return value
            self._fill_l1(
                tenant,
                key,
                envelope,
                spec.tags,
                value=value,
                stale=spec.stale,
                prefetched=prefetched,
            )
            return value
        except Exception:
            counters.load_errors += 1
            raise
        finally:
            if token is not None and self.l2 is not None:
                await self.l2.release_lease(tenant, key, token)

    async def _await_other_loader(self, tenant: str, key: str) -> Envelope | None:
        """Another process holds the lease: wait for its value, up to the lease's time."""
        assert self.l2 is not None  # noqa: S101 - only called with an L2
        deadline = time.monotonic() + self.lease_ttl
        pause = 0.005
        while time.monotonic() < deadline:
            await asyncio.sleep(pause)
            envelope = await self.l2.get(tenant, key)
            if envelope is not None:
                return envelope
            pause = min(pause * 2, 0.1)
        return None

    def _refresh_later(self, tenant: str, key: str, spec: _Spec) -> None:
        if (tenant, key) not in self._inflight:
            self._spawn(tenant, self._load(tenant, key, spec))

    def _prefetch_after(self, tenant: str, key: str) -> None:
        if not self.prefetch:
            return
        state = self._tenants[tenant]
        for candidate in state.model.predict(key):
            if self.l1.get_entry(tenant, candidate, record=False) is not None:
                continue
            spec = state.loaders.get(candidate)
            if spec is None or (tenant, candidate) in self._inflight:
                continue
            state.counters.prefetches += 1
            self._spawn(tenant, self._load(tenant, candidate, spec, prefetched=True))

    def _spawn(self, tenant: str, work: Awaitable[Any]) -> None:
        """Run ``work`` in the background, in ``tenant``'s scope and a context of its own: the
        caller's (its open transaction above all) may be gone by the time the load runs."""

        async def guarded() -> None:
            try:
                with tenant_scope(tenant):
                    await work
            except Exception as exc:  # noqa: BLE001 - a background refresh must not crash
                _log.warning("cache background load failed", error=type(exc).__name__)

        loop = asyncio.get_running_loop()
        task = loop.create_task(guarded(), context=contextvars.Context())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _broadcast(self, message: Invalidation) -> None:
        if self.bus is not None and self.l2 is not None:
            bus = self.bus
            await self.l2.guarded(lambda: bus.publish(message), None)

    def _apply_remote(self, message: Invalidation) -> None:
        tenant = message.tenant
        if message.whole_tenant:
            self._dropped(tenant, ("",))
            self.l1.clear_tenant(tenant)
            self._tenants[tenant].tags.clear()
            return
        state = self._tenants[tenant]
        keys = set(message.keys)
        for tag in message.tags:
            keys |= state.tags.pop(tag, set())
        self._dropped(tenant, (*keys, *("\0" + t for t in message.tags)))
        for key in keys:
            self.l1.delete(tenant, key)

    def _drop_all_l1(self) -> None:
        # Invalidations may have been missed (the bus reconnected): no fill taken before is safe.
        self._drop_seq += 1
        self._drop_floor = self._drop_seq
        for tenant in list(self.l1.tenants()):
            self.l1.clear_tenant(tenant)
        for state in self._tenants.values():
            state.tags.clear()

"""The L1 cache: in process, bounded in bytes, W-TinyLFU per tenant, fair between tenants.

:class:`TenantL1` holds values under ``(tenant, key)`` pairs: each tenant has a dictionary of its
own (a :class:`~tenantry.cache.l1_policy.TenantSegment`), so a key is never combined with a
tenant into one string and no key, whatever characters it holds, can reach another tenant's
entry.

**Bytes.** Every entry carries the caller's size in bytes (the cache manager passes the length of
the serialized value plus a per-key overhead). When :meth:`TenantL1.set` returns, the total is at
most ``capacity_bytes`` and every tenant is within its budget. An entry larger than the capacity,
or than its tenant's budget, is refused outright (and an older value under its key is dropped,
so a stale value never outlives a write).

**Which entry goes** is decided inside the tenant that pays, by W-TinyLFU as Caffeine does
(:mod:`~tenantry.cache.l1_policy`): adaptive window LRU, frequency-sketch admission, segmented
main LRU.

**Which tenant pays** (:mod:`~tenantry.cache.l1_fairness`): a tenant's fair share is
``capacity * weight / (sum of the weights of the tenants holding entries)``, capped by its
budget. Over capacity, the writer pays if it is above its share, else the tenant furthest above
its share: **a tenant within its share never loses an entry to another tenant's writes**, and
unused space is lent out until its owner wants it. A budget (:meth:`TenantL1.set_budget`) is
also a hard cap on the tenant.

**Expiry.** ``expires_at`` is on the cache's clock (``time.monotonic`` by default). An expired
entry is a miss and is removed when met; :meth:`TenantL1.expire` sweeps the expired entries from a
heap of timers (:mod:`~tenantry.cache.l1_expiry`: an update that expires no earlier takes over its
key's timer instead of pushing one), and writes sweep first when something may have expired.

**Threads.** Not thread-safe, and needs no lock under asyncio: no method awaits, so each call
runs to completion on the event loop. Use an instance from one thread only.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from typing import Generic, Literal, TypeVar

from tenantry.cache.l1_expiry import ExpiryQueue
from tenantry.cache.l1_fairness import TenantShares
from tenantry.cache.l1_policy import TenantSegment
from tenantry.cache.l1_types import MISSING, Entry, Missing, TenantStats
from tenantry.errors import InvalidInput

__all__ = ["MISSING", "Entry", "Missing", "TenantL1", "TenantStats"]

V = TypeVar("V")

_NEVER = math.inf


def _check_write(tenant: object, key: object, size: object) -> None:
    if type(tenant) is not str or type(key) is not str:
        raise InvalidInput("tenant and key must be strings")
    if type(size) is not int or size < 1:
        raise InvalidInput(f"size must be a positive int, not {size!r}")


class TenantL1(Generic[V]):
    """A byte-bounded in-process cache of ``(tenant, key) -> value``; see the module docstring."""

    __slots__ = (
        "_adaptive",
        "_capacity",
        "_clock",
        "_expiry",
        "_protected_ratio",
        "_random",
        "_read_buffer",
        "_segments",
        "_shares",
        "_total",
        "_window_ratio",
    )

    def __init__(
        self,
        capacity_bytes: int,
        *,
        window_ratio: float = 0.01,
        protected_ratio: float = 0.8,
        read_buffer: int = 256,
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
    ) -> None:
        if capacity_bytes < 1:
            raise InvalidInput(f"capacity_bytes must be positive, not {capacity_bytes}")
        if not (0 < window_ratio < 1 and 0 < protected_ratio < 1):
            raise InvalidInput("window_ratio and protected_ratio must be between 0 and 1")
        if read_buffer < 1:
            raise InvalidInput(f"read_buffer must be positive, not {read_buffer}")
        self._capacity = capacity_bytes
        self._window_ratio = window_ratio
        self._protected_ratio = protected_ratio
        self._read_buffer = read_buffer
        self._adaptive = adaptive
        self._clock = clock
        self._random = random.Random(seed)  # noqa: S311 - Caffeine's admission coin, not crypto
        self._segments: dict[str, TenantSegment[V]] = {}
        self._shares: TenantShares[V] = TenantShares(capacity_bytes)
        self._total = 0
        self._expiry: ExpiryQueue[V] = ExpiryQueue()

    # -- reading (the hot path: a dict lookup and a list append) -------------------------

    def get(self, tenant: str, key: str) -> V | Literal[Missing.MISSING]:
        """The value cached for ``(tenant, key)``, or :data:`MISSING`."""
        segment = self._segments.get(tenant)
        if segment is None:
            self._segment(tenant).misses += 1
            return MISSING
        entry = segment.data.get(key)
        if entry is not None:
            expires_at = entry.expires_at
            if expires_at is None or expires_at > self._clock():
                reads = segment.reads
                reads.append(entry)
                if len(reads) >= self._read_buffer:
                    segment.drain()
                return entry.value
            self._expire_entry(segment, entry)
        segment.misses += 1
        return MISSING

    def get_entry(self, tenant: str, key: str, *, record: bool = True) -> Entry[V] | None:
        """Like :meth:`get`, but the :class:`Entry` (value, size, expiry, meta), or ``None``.

        ``record=False`` peeks: the lookup is neither a hit nor a miss, nor a read for the policy.
        """
        segment = self._segments.get(tenant)
        if segment is None:
            if record:
                self._segment(tenant).misses += 1
            return None
        entry = segment.data.get(key)
        if entry is not None:
            expires_at = entry.expires_at
            if expires_at is None or expires_at > self._clock():
                if not record:
                    return entry
                reads = segment.reads
                reads.append(entry)
                if len(reads) >= self._read_buffer:
                    segment.drain()
                return entry
            self._expire_entry(segment, entry)
        if record:
            segment.misses += 1
        return None

    # -- writing -------------------------------------------------------------------------

    def set(  # noqa: PLR0912, PLR0915 - the write path, inline: a helper call costs every write
        self,
        tenant: str,
        key: str,
        value: V,
        size: int,
        *,
        expires_at: float | None = None,
        meta: object = None,
    ) -> bool:
        """Cache ``value`` (``size`` bytes) for ``(tenant, key)``; ``False`` if it was refused.

        Refused: larger than the capacity or the tenant's budget, already expired, or not
        admitted by W-TinyLFU. A refused write still removes the key's older value.
        """
        if type(tenant) is not str or type(key) is not str or type(size) is not int or size < 1:
            _check_write(tenant, key, size)  # raises InvalidInput
        segment = self._segments.get(tenant) or self._segment(tenant)
        if segment.reads:
            segment.drain()
        expiry = self._expiry
        if expires_at is not None or expiry.soonest < _NEVER:
            # Sweep what has expired (before evicting anything live); refuse what is past.
            now = self._clock()
            if expiry.soonest <= now:
                self.expire(now)
            if expires_at is not None and expires_at <= now:
                self.delete(tenant, key)
                return False
        old = segment.data.get(key)
        budget, capacity = segment.budget, self._capacity
        if size > capacity or (budget is not None and size > budget):
            if old is not None:
                self._discard(segment, old)
            segment.rejections += 1
            return False
        entry = Entry(tenant, key, value, size, expires_at, meta)
        if old is not None:  # an update: the new entry takes the old one's place
            growth = size - old.size
            self._total += growth
            # TenantShares.limit(segment, growth), inline: the segment holds entries.
            share = self._shares.unit * segment.weight
            if budget is not None and budget < share:
                share = budget
            used = segment.bytes + growth
            segment.limit = share if share > used else used
            segment.replace(old, entry)
            previous = old.expires_at
            if expires_at is None:
                if previous is not None:
                    expiry.discard(old)
            elif previous is not None and expires_at >= previous:
                holder = old._timer  # the old entry's timer covers the new one: no heap push
                holder[0] = entry  # type: ignore[index] # a cached entry with an expiry has one
                entry._timer = holder
            else:
                expiry.push(entry, old)
        else:
            if not segment.data:
                self._shares.join(segment)
            segment.limit = self._shares.limit(segment, size)
            segment.insert(entry)
            self._total += size
            if expires_at is not None:
                expiry.push(entry)
        if self._total > capacity or budget is not None:
            self._enforce(segment)
        if segment.candidates:
            segment.settle()
        return entry._queue is not None

    def delete(self, tenant: str, key: str) -> bool:
        """Remove ``(tenant, key)``; whether it was cached."""
        segment = self._segments.get(tenant)
        entry = None if segment is None else segment.data.get(key)
        if segment is None or entry is None:
            return False
        self._discard(segment, entry)
        return True

    def clear_tenant(self, tenant: str) -> int:
        """Remove every entry of ``tenant`` (its counters and budget stay); how many there were."""
        segment = self._segments.get(tenant)
        if segment is None or not segment.data:
            return 0
        for entry in segment.data.values():
            self._expiry.discard(entry)
        self._total -= segment.bytes
        self._shares.leave(segment)
        return segment.clear()

    def clear(self) -> int:
        """Remove every entry of every tenant; how many there were."""
        return sum(self.clear_tenant(tenant) for tenant in self._shares.tenants())

    def expire(self, now: float | None = None) -> int:
        """Remove the entries expired at ``now`` (default: the clock); how many."""
        now = self._clock() if now is None else now
        expired = self._expiry.pop_expired(now)
        for entry in expired:
            self._expire_entry(self._segments[entry.tenant], entry)
        return len(expired)

    # -- budgets and weights -------------------------------------------------------------

    def set_budget(self, tenant: str, budget: int | None) -> None:
        """Cap ``tenant`` at ``budget`` bytes, now and on every write (``None``: no cap).

        The budget also caps the tenant's fair share. Without one, a tenant may borrow space
        the others leave unused, and gives it back as they write.
        """
        if budget is not None and (type(budget) is not int or budget < 1):
            raise InvalidInput(f"budget must be a positive int or None, not {budget!r}")
        segment = self._segments.get(tenant) or self._segment(tenant)
        segment.budget = budget
        if budget is not None and segment.bytes > budget:
            self._enforce(segment)

    def set_capacity(self, capacity_bytes: int) -> None:
        """Resize the cache to ``capacity_bytes`` (the performance manager's knob); shrinking
        evicts at once, the fair-share rule choosing whom from."""
        if type(capacity_bytes) is not int or capacity_bytes < 1:
            raise InvalidInput(f"capacity_bytes must be a positive int, not {capacity_bytes!r}")
        self._capacity = capacity_bytes
        self._shares.capacity = capacity_bytes
        self._shares.reweigh_all()
        while self._total > capacity_bytes:
            active = self._shares.tenants()
            if not active:
                break
            writer = max((self._segments[t] for t in active), key=lambda seg: seg.bytes)
            self._evict_from(self._shares.payer(writer))

    def set_weight(self, tenant: str, weight: float) -> None:
        """Weigh ``tenant``'s fair share (default 1: every tenant holding entries alike)."""
        if not weight > 0:
            raise InvalidInput(f"weight must be positive, not {weight!r}")
        self._shares.reweigh(self._segments.get(tenant) or self._segment(tenant), weight)

    def share(self, tenant: str) -> float:
        """``tenant``'s fair share of the capacity now, in bytes (as if it held entries)."""
        segment = self._segments.get(tenant)
        if segment is None:
            return self._shares.newcomer_share()
        return self._shares.share(segment)

    # -- inspection ----------------------------------------------------------------------

    @property
    def capacity_bytes(self) -> int:
        return self._capacity

    @property
    def read_buffer(self) -> int:
        """How many reads a segment buffers before it drains them."""
        return self._read_buffer

    @property
    def segments(self) -> dict[str, TenantSegment[V]]:
        """The tenants' segments, by tenant: for an owner that inlines :meth:`get_entry`'s hit
        (the cache manager's hot path). Read-only: everything else goes through the methods."""
        return self._segments

    @property
    def total_bytes(self) -> int:
        """The bytes of every cached entry (expired ones count until they are removed)."""
        return self._total

    def __len__(self) -> int:
        return self._shares.entries()

    def tenants(self) -> list[str]:
        """The tenants holding entries."""
        return self._shares.tenants()

    def keys(self, tenant: str) -> Iterator[str]:
        """``tenant``'s unexpired keys (a snapshot: writing while iterating is safe)."""
        segment = self._segments.get(tenant)
        if segment is None:
            return iter(())
        now = self._clock()
        return iter(
            [k for k, e in segment.data.items() if e.expires_at is None or e.expires_at > now]
        )

    def stats(self, tenant: str) -> TenantStats:
        """``tenant``'s counters, exact (reads still in the buffer are counted)."""
        segment = self._segments.get(tenant)
        if segment is None:
            return TenantStats(0, 0, 0, 0, 0, 0, 0, self.share(tenant), None)
        return TenantStats(
            hits=segment.hits + len(segment.reads),
            misses=segment.misses,
            evictions=segment.evictions,
            rejections=segment.rejections,
            expirations=segment.expirations,
            bytes=segment.bytes,
            entries=len(segment.data),
            share=self._shares.share(segment),
            budget=segment.budget,
        )

    # -- internals -----------------------------------------------------------------------

    def _segment(self, tenant: str) -> TenantSegment[V]:
        if type(tenant) is not str:
            raise InvalidInput("tenant must be a string")
        segment: TenantSegment[V] = TenantSegment(
            tenant,
            window_ratio=self._window_ratio,
            protected_ratio=self._protected_ratio,
            adaptive=self._adaptive,
            rng=self._random,
        )
        self._segments[tenant] = segment
        return segment

    def _enforce(self, writer: TenantSegment[V]) -> None:
        """Evict until ``writer`` is within its budget and the cache within its capacity."""
        budget = writer.budget
        if budget is not None:
            while writer.bytes > budget:
                self._evict_from(writer)
        while self._total > self._capacity:
            self._evict_from(self._shares.payer(writer))

    def _evict_from(self, segment: TenantSegment[V]) -> None:
        segment.limit = self._shares.limit(segment)
        entry, _ = segment.evict_one()
        self._forget(segment, entry)

    def _expire_entry(self, segment: TenantSegment[V], entry: Entry[V]) -> None:
        segment.remove(entry)
        segment.expirations += 1
        self._forget(segment, entry)

    def _discard(self, segment: TenantSegment[V], entry: Entry[V]) -> None:
        segment.remove(entry)
        self._forget(segment, entry)

    def _forget(self, segment: TenantSegment[V], entry: Entry[V]) -> None:
        """The cache-wide bookkeeping of an entry its segment has just removed."""
        self._total -= entry.size
        self._expiry.discard(entry)
        if not segment.data:
            self._shares.leave(segment)

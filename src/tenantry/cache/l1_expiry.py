"""The L1 cache's expiry times, soonest first: a heap of timers with lazy deletion.

Each cached entry with an ``expires_at`` is covered by one **timer**, a heap item ``(time, seq,
holder)`` whose ``holder`` (a one-item list, also the entry's ``_timer``) names the entry. When a
key is written again with an expiry no earlier than its old one (the common update: the same TTL
from a later instant), the new entry takes over the old entry's timer: ``TenantL1.set`` points
the holder at the new entry and the new entry at the holder (two stores, no heap push). A timer
then fires at or before its entry's expiry: :meth:`ExpiryQueue.pop_expired` returns the entry if
it has expired, else pushes the timer again at the entry's own time. So the heap may hold times
earlier than an entry's (``soonest`` too: a sweep then finds nothing to remove and re-arms the
timer, once per timer per expiry period), never later ones, and no entry outlives its expiry in
the heap.

A timer whose entry left the cache (replaced with an earlier expiry, deleted, evicted) stays in
the heap until it reaches the top or the heap is compacted: compaction happens when the heap holds
more than twice the live entries (plus a small slack), so the heap stays ``O(live)`` and a push
stays ``O(log n)`` amortized. :meth:`ExpiryQueue.pop_expired` costs ``O(log n)`` per timer it
pops.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Generic, TypeVar

from tenantry.cache.l1_types import Entry

__all__ = ["ExpiryQueue"]

V = TypeVar("V")

_SLACK = 64


class ExpiryQueue(Generic[V]):
    """The cached entries that carry an ``expires_at``, ordered by (a time not after) it."""

    __slots__ = ("_heap", "_live", "_sequence", "soonest")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, list[Entry[V]]]] = []
        self._sequence = itertools.count()  # ties never compare holders
        self._live = 0
        #: The earliest time in the heap (perhaps of an entry gone or extended); ``inf`` if none.
        self.soonest = math.inf

    def __len__(self) -> int:
        """The heap's size, stale items included (bounded by ``2 * live + 64``)."""
        return len(self._heap)

    def push(self, entry: Entry[V], replaced: Entry[V] | None = None) -> None:
        """Track a newly cached entry (its ``expires_at`` must be set), and note that
        ``replaced``, if given, left the cache (as :meth:`discard`: one call on an update)."""
        expires_at = entry.expires_at
        if expires_at is None:
            raise ValueError("the entry has no expiry")
        if replaced is not None and replaced.expires_at is not None:
            self._live -= 1
        holder = [entry]
        entry._timer = holder
        heap = self._heap
        heapq.heappush(heap, (expires_at, next(self._sequence), holder))
        self._live += 1
        if len(heap) > 2 * self._live + _SLACK:
            heap = self._heap = [item for item in heap if _covers(item[2])]
            heapq.heapify(heap)
        self.soonest = heap[0][0] if heap else math.inf

    def discard(self, entry: Entry[V]) -> None:
        """Note that a tracked entry left the cache (its heap item goes lazily)."""
        if entry.expires_at is not None:
            self._live -= 1

    def pop_expired(self, now: float) -> list[Entry[V]]:
        """Remove and return the still-cached entries whose expiry is at or before ``now``."""
        heap, expired = self._heap, []
        while heap and heap[0][0] <= now:
            holder = heapq.heappop(heap)[2]
            if _covers(holder):
                entry = holder[0]
                expires_at = entry.expires_at
                if expires_at is None or expires_at <= now:
                    expired.append(entry)
                else:  # extended since: re-arm at the entry's own time
                    heapq.heappush(heap, (expires_at, next(self._sequence), holder))
        self.soonest = heap[0][0] if heap else math.inf
        return expired


def _covers(holder: list[Entry[V]]) -> bool:
    """Whether the timer ``holder`` is the live timer of a cached entry."""
    entry = holder[0]
    return entry._queue is not None and entry._timer is holder

"""The L1 cache's expiry times, soonest first: a heap with lazy deletion.

An entry that leaves the cache early (replaced, deleted, evicted) stays in the heap until it
reaches the top or the heap is compacted: compaction happens when the heap holds more than twice
the live entries (plus a small slack), so the heap stays ``O(live)`` and a push stays
``O(log n)`` amortized. :meth:`ExpiryQueue.pop_expired` costs ``O(log n)`` per entry it returns.
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
    """The cached entries that carry an ``expires_at``, ordered by it."""

    __slots__ = ("_heap", "_live", "_sequence", "soonest")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Entry[V]]] = []
        self._sequence = itertools.count()  # ties never compare entries
        self._live = 0
        #: The earliest expiry in the heap (perhaps of an entry already gone); ``inf`` if none.
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
        heap = self._heap
        heapq.heappush(heap, (expires_at, next(self._sequence), entry))
        self._live += 1
        if len(heap) > 2 * self._live + _SLACK:
            heap = self._heap = [item for item in heap if item[2]._queue is not None]  # cached
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
            entry = heapq.heappop(heap)[2]
            if entry.cached:
                expired.append(entry)
        self.soonest = heap[0][0] if heap else math.inf
        return expired

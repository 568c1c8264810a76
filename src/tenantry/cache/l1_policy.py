"""One tenant's share of the L1 cache: its entries and its W-TinyLFU policy.

:class:`tenantry.cache.l1.TenantL1` keeps one :class:`TenantSegment` per tenant and decides
*which tenant* gives up space; the segment decides *which of its entries* go, as Caffeine does:

- a **window** LRU takes every new entry; it starts at ``window_ratio`` (1%) of the segment's
  limit and Caffeine's hill climber (:mod:`~tenantry.cache.l1_climber`) resizes it, trading
  quota with protected, toward the best sampled hit rate;
- entries pushed out of the window become **candidates** for the main space, a segmented LRU of
  **probation** and **protected** (``protected_ratio``, 80%, of the main space at the start);
- when the segment must shed bytes, the oldest candidate (or, without one, the window's LRU entry)
  duels the probation LRU entry (or the protected one when probation is empty): the candidate
  is admitted only if the frequency sketch rates it more popular, else it is rejected; one with
  frequency >= 6 still wins one duel in 128 at random (Caffeine's defence against hash
  flooding). Candidates still standing at the end of a write join probation;
- sizes are bytes: an entry larger than the window goes straight to the candidates and must win
  its duel like any other (as in Caffeine); the cache refuses an entry that can never fit.

Reads are applied lazily, which is what keeps a hit at a dict lookup and a list append: the
cache appends each hit to ``reads`` (bounded: drained when full); :meth:`TenantSegment.drain`
runs when it fills or before the segment changes, adds the batch to the hit count and the
sketch's sample, and counts each read on its entry (``Entry._reads``), with no policy work. An
entry with pending reads was read since the policy last looked at it, and the policy looks at
entries only at the LRU ends of its queues: a read entry found there gets what its reads would
have earned under Caffeine (window or protected: back to the MRU end; probation: promotion to
protected), and its read count goes into the sketch then. This is LRU with deferred ("lazy")
promotion, the CLOCK approximation of LRU. Admission is unchanged: every read reaches the
sketch before its entry duels or leaves; when the sketch ages, pending counts are halved with
it. On the traces of ``tests/cache/traces.py`` the hit ratio is within 0.005 of applying each
read at once (an ``OrderedDict.move_to_end`` and four counter updates per hit).

Not thread-safe: use one segment from one thread (one event loop); nothing here awaits.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Generic, TypeVar

from tenantry.cache.l1_climber import TRANSFER_LIMIT, HillClimber
from tenantry.cache.l1_types import Entry
from tenantry.cache.sketch import FrequencySketch

__all__ = ["TenantSegment"]

V = TypeVar("V")

#: Caffeine's ``ADMIT_HASHDOS_THRESHOLD``: a candidate this popular sometimes wins anyway.
_WARM_FREQUENCY = 6


class TenantSegment(Generic[V]):
    """One tenant's entries, queues, frequency sketch, counters and limits."""

    __slots__ = (
        "_random",
        "budget",
        "bytes",
        "candidates",
        "climber",
        "data",
        "evictions",
        "expirations",
        "hits",
        "limit",
        "misses",
        "probation",
        "protected",
        "protected_bytes",
        "protected_share",
        "reads",
        "rejections",
        "sketch",
        "tenant",
        "weight",
        "window",
        "window_bytes",
        "window_share",
    )

    def __init__(
        self,
        tenant: str,
        *,
        window_ratio: float,
        protected_ratio: float,
        adaptive: bool,
        rng: random.Random,
    ) -> None:
        self.tenant = tenant
        # Fractions of ``limit``; the climber moves quota between the window and protected.
        self.window_share = window_ratio
        self.protected_share = (1 - window_ratio) * protected_ratio
        self.climber = HillClimber() if adaptive else None
        self._random = rng
        self.data: dict[str, Entry[V]] = {}
        self.window: OrderedDict[str, Entry[V]] = OrderedDict()
        self.candidates: OrderedDict[str, Entry[V]] = OrderedDict()
        self.probation: OrderedDict[str, Entry[V]] = OrderedDict()
        self.protected: OrderedDict[str, Entry[V]] = OrderedDict()
        self.reads: list[Entry[V]] = []
        self.sketch = FrequencySketch()
        self.bytes = self.window_bytes = self.protected_bytes = 0
        self.limit: float = 0  # the bytes the policy sizes its queues for; set by the cache
        self.budget: int | None = None
        self.weight = 1.0
        self.hits = self.misses = self.evictions = self.rejections = self.expirations = 0

    # -- reads ---------------------------------------------------------------------------

    def drain(self) -> None:
        """Count the buffered reads on their entries and in the hit count (no policy work)."""
        reads = self.reads
        if reads:
            for entry in reads:
                entry._reads += 1
            self.hits += len(reads)
            due = self.sketch.tick(len(reads))
            reads.clear()
            if due:
                self._age()
            if self.climber is not None and (self.evictions or self.rejections):
                self.resize_window()

    def _age(self) -> None:
        """Halve the sketch, and the reads still pending on entries with it (a read stays read)."""
        self.sketch.reset()
        for entry in self.data.values():
            if entry._reads > 1:
                entry._reads = (entry._reads + 1) >> 1

    def _consume(self, entry: Entry[V]) -> bool:
        """Whether ``entry`` was read since last looked at; its reads go into the sketch."""
        count = entry._reads
        if not count:
            return False
        self.sketch.add(entry._cells, count)
        entry._reads = 0
        return True

    def frequency(self, entry: Entry[V]) -> int:
        """The sketch's estimate for ``entry``, its pending reads included (for inspection)."""
        self._consume(entry)
        return self.sketch.estimate(entry._cells)

    # -- the window's size (Caffeine's hill climber) ---------------------------------------

    def resize_window(self) -> None:
        """Take the climber's next step, if a sample is complete."""
        if self.climber is None or self.limit <= 0:
            return
        amount = self.climber.adjustment(self.hits, self.misses, self.sketch.sample_size)
        if amount > 0:
            self._grow_window(min(amount, self.protected_share) * self.limit)
        elif amount < 0:
            self._shrink_window(min(-amount, self.window_share) * self.limit)

    def _grow_window(self, quota: float) -> None:
        """Move up to ``quota`` bytes of main's LRU entries into the window, with their quota."""
        moved = 0
        for _ in range(TRANSFER_LIMIT):
            source = self.probation or self.protected
            if not source:
                break
            entry = next(iter(source.values()))
            if moved + entry.size > quota:
                break
            moved += entry.size
            del source[entry.key]
            if source is self.protected:
                self.protected_bytes -= entry.size
            self.window[entry.key] = entry
            entry._queue = self.window
            self.window_bytes += entry.size
        share = moved / self.limit
        self.window_share += share
        self.protected_share = max(0.0, self.protected_share - share)

    def _shrink_window(self, quota: float) -> None:
        """Move up to ``quota`` bytes of the window's LRU entries into probation, and the quota."""
        moved = 0
        window = self.window
        for _ in range(TRANSFER_LIMIT):
            if not window:
                break
            entry = next(iter(window.values()))
            if moved + entry.size > quota:
                break
            moved += entry.size
            del window[entry.key]
            self.window_bytes -= entry.size
            self.probation[entry.key] = entry
            entry._queue = self.probation
        share = moved / self.limit
        self.window_share = max(0.0, self.window_share - share)
        self.protected_share += share

    # -- writes --------------------------------------------------------------------------

    def insert(self, entry: Entry[V]) -> None:
        """Add a new key's entry to the window (the caller has drained and set ``limit``)."""
        sketch = self.sketch
        if len(self.data) >= sketch.capacity and sketch.ensure_capacity(len(self.data) + 1):
            for resident in self.data.values():
                resident._cells = sketch.cells(resident.key)
        entry._cells = sketch.cells(entry.key)
        sketch.add(entry._cells)
        if sketch.tick():
            self._age()
        self.data[entry.key] = entry
        self.window[entry.key] = entry
        entry._queue = self.window
        self.window_bytes += entry.size
        self.bytes += entry.size
        if self.window_bytes > self.limit * self.window_share:
            self._overflow_window()

    def replace(self, old: Entry[V], new: Entry[V]) -> None:
        """Put ``new`` in ``old``'s place (same queue position); the write counts as a read."""
        queue = old._queue
        if queue is None:
            raise RuntimeError("replacing an entry that is not cached")
        key, delta = old.key, new.size - old.size
        queue[key] = new
        self.data[key] = new
        new._queue, new._cells, old._queue = queue, old._cells, None
        new._reads = old._reads + 1
        sketch = self.sketch
        sketch.additions += 1  # sketch.tick(), inline
        if sketch.additions >= sketch.sample_size:
            self._age()
        self.bytes += delta
        if queue is self.window:
            self.window_bytes += delta
            if self.window_bytes > self.limit * self.window_share:
                self._overflow_window()
        elif queue is self.protected:
            self.protected_bytes += delta
            self._overflow_protected()

    def remove(self, entry: Entry[V]) -> None:
        """Take ``entry`` out; its pending reads still reach the sketch (history survives)."""
        if self.reads:
            self.drain()  # the read buffer must never hold an entry that left
        queue = entry._queue
        if queue is None:
            raise RuntimeError("removing an entry that is not cached")
        del queue[entry.key]
        del self.data[entry.key]
        entry._queue = None
        self.bytes -= entry.size
        if queue is self.window:
            self.window_bytes -= entry.size
        elif queue is self.protected:
            self.protected_bytes -= entry.size
        if entry._reads:
            self.sketch.add(entry._cells, entry._reads)
            entry._reads = 0

    def settle(self) -> None:
        """Admit the candidates still standing after a write into probation (MRU end)."""
        if self.candidates:
            probation = self.probation
            for key, entry in self.candidates.items():
                probation[key] = entry
                entry._queue = probation
            self.candidates.clear()

    def clear(self) -> int:
        """Drop every entry (counters stay); the number of entries dropped."""
        self.drain()  # buffered reads were hits
        count = len(self.data)
        for entry in self.data.values():
            entry._queue = None
        for mapping in (self.data, self.window, self.candidates, self.probation, self.protected):
            mapping.clear()
        self.reads.clear()
        self.sketch.clear()
        self.bytes = self.window_bytes = self.protected_bytes = 0
        return count

    # -- eviction ------------------------------------------------------------------------

    def evict_one(self) -> tuple[Entry[V], bool]:
        """Remove one entry chosen by W-TinyLFU: ``(entry, True if refused admission)``."""
        if self.reads:
            self.drain()
        victim = self._victim()
        source = self.candidates or self.window
        candidate = next(iter(source.values())) if source else None
        if candidate is None or victim is None:
            loser = candidate if victim is None else victim
            if loser is None:
                raise RuntimeError("evicting from an empty segment")
            self.remove(loser)
            self.evictions += 1
            return loser, False
        if self._admit(candidate, victim):
            self.remove(victim)
            self.evictions += 1
            return victim, False
        self.remove(candidate)
        self.rejections += 1
        return candidate, True

    def _admit(self, candidate: Entry[V], victim: Entry[V]) -> bool:
        """TinyLFU: admit ``candidate`` over ``victim`` if the sketch rates it more popular."""
        sketch = self.sketch
        for entry in (candidate, victim):
            if entry._reads:
                sketch.add(entry._cells, entry._reads)
                entry._reads = 0
        candidate_frequency = sketch.estimate(candidate._cells)
        if candidate_frequency > sketch.estimate(victim._cells):
            return True
        return candidate_frequency >= _WARM_FREQUENCY and self._random.getrandbits(7) == 0

    def _victim(self) -> Entry[V] | None:
        """The main space's LRU entry that was not read (read ones are promoted on the way)."""
        probation, protected = self.probation, self.protected
        while probation:
            entry = next(iter(probation.values()))
            if not self._consume(entry):
                return entry
            del probation[entry.key]
            protected[entry.key] = entry
            entry._queue = protected
            self.protected_bytes += entry.size
            self._overflow_protected()
        while protected:
            entry = next(iter(protected.values()))
            if not self._consume(entry) or len(protected) == 1:
                return entry
            protected.move_to_end(entry.key)
        return None

    def _overflow_window(self) -> None:
        """Move the window's LRU entries to the candidates until the window fits."""
        window, limit = self.window, self.limit * self.window_share
        while self.window_bytes > limit and window:
            entry = next(iter(window.values()))
            if self._consume(entry) and len(window) > 1:
                window.move_to_end(entry.key)  # read while in the window: a second chance
                continue
            del window[entry.key]
            self.window_bytes -= entry.size
            self.candidates[entry.key] = entry
            entry._queue = self.candidates

    def _overflow_protected(self) -> None:
        """Demote the protected LRU entries to probation until protected fits."""
        protected = self.protected
        limit = self.limit * self.protected_share
        while self.protected_bytes > limit and protected:
            entry = next(iter(protected.values()))
            if self._consume(entry) and len(protected) > 1:
                protected.move_to_end(entry.key)
                continue
            del protected[entry.key]
            self.protected_bytes -= entry.size
            self.probation[entry.key] = entry
            entry._queue = self.probation

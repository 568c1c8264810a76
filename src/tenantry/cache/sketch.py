"""A count-min frequency sketch with 4-bit saturating counters and periodic aging (TinyLFU).

This is the popularity estimator of W-TinyLFU, shaped like Caffeine's ``FrequencySketch``:

- **depth 4**: a key maps to one counter in each of four rows; its estimate is the minimum of
  the four, so it never underestimates (until aging halves it);
- **4-bit style counters**: each counter is a byte of a :class:`bytearray` that saturates at 15,
  so one popular key cannot dominate forever;
- **aging ("reset")**: after ``sample_size`` (ten times the capacity) recorded accesses every
  counter is halved, so the sketch follows a changing workload; the lost odd remainders are taken
  off the addition count as Caffeine does;
- **width**: four counters per row for each entry of capacity, a power of two. Capacity can grow
  (:meth:`ensure_capacity`) without losing history: a row index is the hash modulo the width, so
  a row ``r`` times wider is ``r`` copies of the old one and every estimate stays the same.

No doorkeeper (Caffeine's sketch has none either). The four row indexes come from one 64-bit
hash by double hashing (``a + i * b`` modulo the width, ``b`` odd), which keeps count-min's
error bounds and costs a few small-int operations instead of four 128-bit products. Keys are
hashed with Python's ``hash``, which for strings is keyed per process (SipHash), so a client
cannot pick keys that collide on purpose.

Callers that already hold a key's :meth:`cells` can skip the hashing with :meth:`add` and
:meth:`estimate`; :meth:`tick` counts additions and says when :meth:`reset` is due, so a caller
that applies increments late (as :mod:`tenantry.cache.l1_policy` does) can flush them before the
halving.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["DEPTH", "MAX_COUNT", "Cells", "FrequencySketch"]

DEPTH = 4
MAX_COUNT = 15
_MASK32 = (1 << 32) - 1
_HALVE = bytes(value >> 1 for value in range(256))
_ODD = bytes(value & 1 for value in range(256))
_COUNTERS_PER_ENTRY = 4
_SAMPLE_FACTOR = 10

#: The four counter positions of a key, one per row (indexes into the flat table).
Cells = tuple[int, int, int, int]


def _power_of_two_at_least(value: int) -> int:
    return 1 << max(0, value - 1).bit_length()


class FrequencySketch:
    """Approximate access counts (0-15) of an unbounded key space in a fixed table."""

    __slots__ = (
        "_capacity",
        "_mask",
        "_max_capacity",
        "_table",
        "_width",
        "additions",
        "sample_size",
    )

    def __init__(self, capacity: int = 16, *, max_capacity: int = 1 << 20) -> None:
        if capacity < 1 or max_capacity < 1:
            raise ValueError("capacity and max_capacity must be positive")
        self._max_capacity = _power_of_two_at_least(max_capacity)
        #: Accesses recorded since the last halving (reduced by a halving, as in Caffeine). A
        #: caller may count one itself (``additions += 1``, then compare with ``sample_size``):
        #: :meth:`tick`, inline.
        self.additions = 0
        #: Recorded accesses between two halvings: ten per entry of capacity.
        self.sample_size = 0
        self._resize(min(_power_of_two_at_least(capacity), self._max_capacity))

    def _resize(self, capacity: int) -> None:
        self._capacity = capacity
        self.sample_size = capacity * _SAMPLE_FACTOR
        self._width = capacity * _COUNTERS_PER_ENTRY
        self._mask = self._width - 1
        self._table = bytearray(self._width * DEPTH)

    @property
    def capacity(self) -> int:
        """The number of distinct keys the sketch is sized for (a power of two)."""
        return self._capacity

    @property
    def width(self) -> int:
        """Counters per row."""
        return self._width

    def cells(self, key: Hashable) -> Cells:
        """The key's counter positions; valid until the next :meth:`ensure_capacity` growth."""
        h = hash(key)
        a, b = h & _MASK32, ((h >> 32) & _MASK32) | 1
        mask, width = self._mask, self._width
        return (
            a & mask,
            width + ((a + b) & mask),
            2 * width + ((a + 2 * b) & mask),
            3 * width + ((a + 3 * b) & mask),
        )

    def add(self, cells: Cells, count: int = 1) -> None:
        """Add ``count`` to each of the cells, saturating at 15 (does not :meth:`tick`)."""
        table = self._table
        a, b, c, d = cells  # unrolled: this runs on every write
        value = table[a] + count
        table[a] = value if value < MAX_COUNT else MAX_COUNT
        value = table[b] + count
        table[b] = value if value < MAX_COUNT else MAX_COUNT
        value = table[c] + count
        table[c] = value if value < MAX_COUNT else MAX_COUNT
        value = table[d] + count
        table[d] = value if value < MAX_COUNT else MAX_COUNT

    def estimate(self, cells: Cells) -> int:
        """The estimated count of the key whose cells these are."""
        table = self._table
        a, b, c, d = cells
        return min(table[a], table[b], table[c], table[d])

    def tick(self, count: int = 1) -> bool:
        """Count ``count`` recorded accesses; ``True`` when :meth:`reset` is due."""
        additions = self.additions + count
        self.additions = additions
        return additions >= self.sample_size

    def increment(self, key: Hashable) -> None:
        """Record one access of ``key`` (and age the sketch when the sample is full)."""
        self.add(self.cells(key))
        if self.tick():
            self.reset()

    def frequency(self, key: Hashable) -> int:
        """The estimated number of recent accesses of ``key`` (0-15)."""
        return self.estimate(self.cells(key))

    def reset(self) -> None:
        """Age the sketch: halve every counter and the addition count."""
        odd = self._table.translate(_ODD).count(1)
        self._table = self._table.translate(_HALVE)
        self.additions = max(0, (self.additions - odd // DEPTH) // 2)

    def ensure_capacity(self, entries: int) -> bool:
        """Grow to hold ``entries`` keys, keeping estimates; ``True`` if the cells changed."""
        target = min(_power_of_two_at_least(entries), self._max_capacity)
        if target <= self._capacity:
            return False
        old, old_width = self._table, self._width
        self._resize(target)
        factor = self._width // old_width
        self._table = bytearray().join(
            old[row * old_width : (row + 1) * old_width] * factor for row in range(DEPTH)
        )
        return True

    def clear(self, capacity: int = 16) -> None:
        """Forget everything and shrink back to ``capacity``."""
        self.additions = 0
        self._resize(min(_power_of_two_at_least(capacity), self._max_capacity))

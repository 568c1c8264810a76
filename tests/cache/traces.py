"""Seeded request traces for the L1 cache, shared by its tests and ``benchmarks/bench_cache_l1``.

A trace is a list of ``(key, size)`` requests. Each key has one size for the whole trace (its
value's bytes), drawn log-uniformly between ``min_size`` and ``max_size``, so the cache is
bounded by bytes of unequal entries, as in production.

- :func:`zipf_trace`: keys ``k0..k{n-1}`` requested with probability proportional to
  ``1 / rank**s`` (the popular keys are spread over the key space, not ``k0, k1, ...``);
- :func:`browsing_trace`: listeners open an album (Zipf-popular) and play its tracks in order:
  the sequential pattern a next-key prefetcher can learn (keys only, for the CacheManager);
- :func:`scan_trace`: the same, interrupted every ``scan_every`` requests by a scan of
  ``scan_length`` keys never seen before or after (a report job, a crawler): the pattern that
  flushes an LRU and that TinyLFU admission is built to ignore.

:func:`replay` runs a trace against a cache as a cache-aside client does (get; on a miss, set)
and returns the hit ratio; :class:`ByteLRU` is the reference: an LRU bounded by the same bytes.
"""

from __future__ import annotations

import itertools
import random
from collections import OrderedDict
from collections.abc import Callable

__all__ = [
    "ByteLRU",
    "Trace",
    "browsing_trace",
    "replay",
    "scan_trace",
    "sizes_for",
    "zipf_trace",
]

Trace = list[tuple[str, int]]


def sizes_for(
    count: int, rng: random.Random, min_size: int = 64, max_size: int = 4096
) -> list[int]:
    """``count`` sizes, log-uniform in ``[min_size, max_size]``."""
    low, high = min_size.bit_length() - 1, max_size.bit_length() - 1
    return [int(2 ** rng.uniform(low, high)) for _ in range(count)]


def _zipf_ids(n_keys: int, s: float, length: int, rng: random.Random) -> list[int]:
    weights = itertools.accumulate(1 / (rank + 1) ** s for rank in range(n_keys))
    ranks = rng.choices(range(n_keys), cum_weights=list(weights), k=length)
    order = list(range(n_keys))
    rng.shuffle(order)  # rank -> key id
    return [order[rank] for rank in ranks]


def zipf_trace(
    n_keys: int = 10_000,
    s: float = 0.9,
    length: int = 100_000,
    *,
    seed: int = 1,
    min_size: int = 64,
    max_size: int = 4096,
) -> Trace:
    """``length`` requests over ``n_keys`` keys with Zipf(``s``) popularity."""
    rng = random.Random(seed)
    sizes = sizes_for(n_keys, rng, min_size, max_size)
    return [(f"k{i}", sizes[i]) for i in _zipf_ids(n_keys, s, length, rng)]


def scan_trace(
    n_keys: int = 10_000,
    s: float = 0.9,
    length: int = 100_000,
    *,
    scan_every: int = 5_000,
    scan_length: int = 2_000,
    seed: int = 1,
    min_size: int = 64,
    max_size: int = 4096,
) -> Trace:
    """A :func:`zipf_trace` with a scan of one-hit keys every ``scan_every`` requests.

    ``length`` counts the Zipf requests only; the scans come on top of them.
    """
    rng = random.Random(seed)
    sizes = sizes_for(n_keys, rng, min_size, max_size)
    ids = _zipf_ids(n_keys, s, length, rng)
    trace: Trace = []
    scanned = itertools.count()
    for start in range(0, length, scan_every):
        trace.extend((f"k{i}", sizes[i]) for i in ids[start : start + scan_every])
        scan_sizes = sizes_for(scan_length, rng, min_size, max_size)
        trace.extend((f"scan{next(scanned)}", size) for size in scan_sizes)
    return trace


class ByteLRU:
    """The reference policy: least recently used, bounded by the sum of the entries' sizes."""

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity = capacity_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[object, int]] = OrderedDict()

    def get(self, key: str) -> object | None:
        item = self._entries.get(key)
        if item is None:
            return None
        self._entries.move_to_end(key)
        return item[0]

    def set(self, key: str, value: object, size: int) -> bool:
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        if size > self.capacity:
            return False
        self._entries[key] = (value, size)
        self.bytes += size
        while self.bytes > self.capacity:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.bytes -= evicted
        return True


def replay(trace: Trace, get: Callable[[str], bool], put: Callable[[str, int], object]) -> float:
    """The hit ratio of ``trace`` when a miss (``get`` false) is followed by ``put``."""
    hits = 0
    for key, size in trace:
        if get(key):
            hits += 1
        else:
            put(key, size)
    return hits / len(trace) if trace else 0.0


def browsing_trace(seed: int = 11, sessions: int = 3000, albums: int = 300) -> list[str]:
    """Sessions of ``album:N`` then ``album:N:track:1..5``, albums Zipf(1)-popular."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(albums)]
    trace: list[str] = []
    for _ in range(sessions):
        album = rng.choices(range(albums), weights)[0]
        trace.append(f"album:{album}")
        trace.extend(f"album:{album}:track:{n}" for n in range(1, 6))
    return trace

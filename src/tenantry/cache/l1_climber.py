"""Caffeine's hill climber: moves the W-TinyLFU window size toward the best hit rate.

The best split between the recency window and the frequency-guarded main space depends on the
workload: a small window suits frequency-biased traffic (Zipf), a large one suits bursts of
recent keys. Every ``sample_size`` requests (the sketch's: ten per entry of capacity) the
climber compares the sample's hit rate with the previous one and keeps stepping the window the
same way while it helps, or turns around when it hurts. Steps start at 6.25% of the segment and
decay by 2% each sample, so the climber settles; a hit-rate change of 5 points or more restarts
it with a full step (the workload changed). A step trades quota between the window and the
protected space and moves entries across at once, as Caffeine's ``increaseWindow`` and
``decreaseWindow`` do (up to 1,000 entries a step); the window keeps only the quota it filled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from tenantry.cache.l1_policy import TenantSegment

__all__ = ["HillClimber", "resize_window"]

V = TypeVar("V")

STEP_PERCENT = 0.0625
STEP_DECAY = 0.98
RESTART_THRESHOLD = 0.05
#: Caffeine's ``QUEUE_TRANSFER_THRESHOLD``: at most this many entries move per step.
TRANSFER_LIMIT = 1000


class HillClimber:
    """How much to grow (positive) or shrink (negative) the window, as a fraction of the limit."""

    __slots__ = ("_hit_rate", "_hits", "_misses", "_step")

    def __init__(self) -> None:
        self._hit_rate = 0.0
        self._hits = self._misses = 0
        self._step = -STEP_PERCENT  # Caffeine starts by trying a smaller window

    def adjustment(self, hits: int, misses: int, sample_size: int) -> float:
        """The next step, given the running hit and miss totals (0 until a sample is full)."""
        sample_hits, sample_misses = hits - self._hits, misses - self._misses
        requests = sample_hits + sample_misses
        if requests < sample_size:
            return 0.0
        self._hits, self._misses = hits, misses
        hit_rate = sample_hits / requests
        change = hit_rate - self._hit_rate
        amount = self._step if change >= 0 else -self._step
        if abs(change) >= RESTART_THRESHOLD:
            self._step = STEP_PERCENT if amount >= 0 else -STEP_PERCENT
        else:
            self._step = STEP_DECAY * amount
        self._hit_rate = hit_rate
        return amount


def resize_window(segment: TenantSegment[V]) -> None:
    """Take the climber's next step for ``segment``, if a sample is complete."""
    if segment.climber is None or segment.limit <= 0:
        return
    amount = segment.climber.adjustment(segment.hits, segment.misses, segment.sketch.sample_size)
    if amount > 0:
        _grow_window(segment, min(amount, segment.protected_share) * segment.limit)
    elif amount < 0:
        _shrink_window(segment, min(-amount, segment.window_share) * segment.limit)


def _grow_window(segment: TenantSegment[V], quota: float) -> None:
    """Move up to ``quota`` bytes of main's LRU entries into the window, with their quota."""
    moved = 0
    for _ in range(TRANSFER_LIMIT):
        source = segment.probation or segment.protected
        if not source:
            break
        entry = next(iter(source.values()))
        if moved + entry.size > quota:
            break
        moved += entry.size
        del source[entry.key]
        if source is segment.protected:
            segment.protected_bytes -= entry.size
        segment.window[entry.key] = entry
        entry._queue = segment.window
        segment.window_bytes += entry.size
    share = moved / segment.limit
    segment.window_share += share
    segment.protected_share = max(0.0, segment.protected_share - share)


def _shrink_window(segment: TenantSegment[V], quota: float) -> None:
    """Move up to ``quota`` bytes of the window's LRU entries into probation, with their quota."""
    moved = 0
    window = segment.window
    for _ in range(TRANSFER_LIMIT):
        if not window:
            break
        entry = next(iter(window.values()))
        if moved + entry.size > quota:
            break
        moved += entry.size
        del window[entry.key]
        segment.window_bytes -= entry.size
        segment.probation[entry.key] = entry
        entry._queue = segment.probation
    share = moved / segment.limit
    segment.window_share = max(0.0, segment.window_share - share)
    segment.protected_share += share

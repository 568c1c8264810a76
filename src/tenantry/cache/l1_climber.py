"""Caffeine's hill climber: moves the W-TinyLFU window size toward the best hit rate.

The best split between the recency window and the frequency-guarded main space depends on the
workload: a small window suits frequency-biased traffic (Zipf), a large one suits bursts of
recent keys. Every ``sample_size`` requests (the sketch's: ten per entry of capacity) the
climber compares the sample's hit rate with the previous one and keeps stepping the window the
same way while it helps, or turns around when it hurts. Steps start at 6.25% of the segment and
decay by 2% each sample, so the climber settles; a hit-rate change of 5 points or more restarts
it with a full step (the workload changed). A step trades quota between the window and the
protected space and moves entries across at once, as Caffeine's ``increaseWindow`` and
``decreaseWindow`` do (up to 1,000 entries a step; :meth:`TenantSegment.resize_window` in
:mod:`~tenantry.cache.l1_policy`); the window keeps only the quota it filled.
"""

from __future__ import annotations

__all__ = ["TRANSFER_LIMIT", "HillClimber"]

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

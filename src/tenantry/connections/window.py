"""The sliding window of a circuit breaker: the last ``size`` outcomes, counted incrementally.

An outcome is two bits: 1 = the call failed, 2 = it was slow. The window is a ring of them plus
the running counts of failed and slow calls, so adding an outcome (and dropping the oldest one
once the ring is full) costs O(1), whatever the window size. This is Resilience4j's count-based
sliding window; a time-based one would bucket by second instead.
"""

from __future__ import annotations

__all__ = ["FAILED", "SLOW", "OutcomeWindow"]

FAILED = 1
SLOW = 2


class OutcomeWindow:
    """The last ``size`` outcomes and how many of them failed or were slow."""

    __slots__ = ("count", "failures", "next", "ring", "size", "slow")

    def __init__(self, size: int) -> None:
        self.size = size
        self.ring = bytearray(size)
        self.count = self.next = self.failures = self.slow = 0

    def add(self, flags: int) -> None:
        i = self.next
        if self.count == self.size:
            old = self.ring[i]
            if old:
                self.failures -= old & FAILED
                self.slow -= old >> 1
        else:
            self.count += 1
        self.ring[i] = flags
        self.next = i + 1 if i + 1 < self.size else 0
        if flags:
            self.failures += flags & FAILED
            self.slow += flags >> 1

    def clear(self) -> None:
        self.ring = bytearray(self.size)
        self.count = self.next = self.failures = self.slow = 0

    @property
    def failure_rate(self) -> float:
        return self.failures / self.count if self.count else 0.0

    @property
    def slow_call_rate(self) -> float:
        return self.slow / self.count if self.count else 0.0

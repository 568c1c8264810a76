"""A per-tenant next-key model: which key tends to follow which, learned from the access sequence.

A first-order Markov model with bounded memory: for each recently seen key, counts of the keys
that came right after it (at most ``fanout`` kept, the rarest dropped). After an access to ``k``
it predicts the followers whose share of ``k``'s transitions is at least ``min_probability``
with at least ``min_support`` observations. Whether prefetching on these predictions pays is
measured on traces in ``benchmarks/bench_cache.py``; the cache uses it only when asked to.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["NextKeyModel"]


class _Followers:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.total = 0


class NextKeyModel:
    """Transitions of one tenant's key sequence (not thread-safe; one event loop)."""

    def __init__(
        self,
        *,
        max_keys: int = 10_000,
        fanout: int = 4,
        min_support: int = 2,
        min_probability: float = 0.4,
    ) -> None:
        self.max_keys = max_keys
        self.fanout = fanout
        self.min_support = min_support
        self.min_probability = min_probability
        self._followers: OrderedDict[str, _Followers] = OrderedDict()
        self._previous: str | None = None

    def __len__(self) -> int:
        return len(self._followers)

    def observe(self, key: str) -> None:
        """Record an access to ``key`` after the previous one."""
        previous, self._previous = self._previous, key
        if previous is None or previous == key:
            return
        followers = self._followers.get(previous)
        if followers is None:
            followers = self._followers[previous] = _Followers()
            if len(self._followers) > self.max_keys:
                self._followers.popitem(last=False)
        else:
            self._followers.move_to_end(previous)
        counts = followers.counts
        counts[key] = counts.get(key, 0) + 1
        followers.total += 1
        if len(counts) > self.fanout:
            rarest = min(counts, key=counts.__getitem__)
            followers.total -= counts.pop(rarest)

    def predict(self, key: str) -> list[str]:
        """The keys likely to follow ``key``, most likely first."""
        followers = self._followers.get(key)
        if followers is None or followers.total < self.min_support:
            return []
        threshold = max(self.min_support, self.min_probability * followers.total)
        likely = [k for k, n in followers.counts.items() if n >= threshold]
        likely.sort(key=followers.counts.__getitem__, reverse=True)
        return likely

"""The recent values of each signal this process samples, in memory, for the detection rules.

The same values go to the monitoring manager's series (stored, queried for trends); detection
reads them here, at once, because what it judges (this process's event loop, pool and CPU) is
this process's own and must be judged before the next flush. Each signal keeps ``horizon``
seconds of ``(time, value)`` pairs.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable

__all__ = ["SignalWindow", "percentile", "robust_z"]


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by the nearest-rank rule; None without values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def robust_z(value: float, baseline: list[float]) -> float | None:
    """How far ``value`` lies from the baseline's median, in scaled median absolute deviations
    (``1.4826 * MAD`` estimates the standard deviation of normal data); None with fewer than 8
    baseline values. A flat baseline has its MAD floored at 1 % of its median (or 1e-9), so that a
    change of a constant signal scores high rather than infinite."""
    if len(baseline) < 8:
        return None
    median = statistics.median(baseline)
    mad = statistics.median(abs(v - median) for v in baseline)
    scale = 1.4826 * max(mad, abs(median) * 0.01, 1e-9)
    return (value - median) / scale


class SignalWindow:
    """``(time, value)`` per signal name, ``horizon`` seconds of them."""

    def __init__(
        self, horizon: float = 900.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.horizon = horizon
        self._clock = clock
        self._values: dict[str, deque[tuple[float, float]]] = {}

    def now(self) -> float:
        return self._clock()

    def add(self, name: str, value: float, at: float | None = None) -> None:
        now = self._clock() if at is None else at
        values = self._values.get(name)
        if values is None:
            values = self._values[name] = deque()
        values.append((now, value))
        while values and values[0][0] < now - self.horizon:
            values.popleft()

    def since(self, name: str, seconds: float) -> list[tuple[float, float]]:
        """The pairs of the last ``seconds`` seconds, oldest first."""
        cutoff = self._clock() - seconds
        return [pair for pair in self._values.get(name, ()) if pair[0] >= cutoff]

    def values(self, name: str, seconds: float) -> list[float]:
        return [v for _, v in self.since(name, seconds)]

    def last(self, name: str) -> float | None:
        values = self._values.get(name)
        return values[-1][1] if values else None

    def names(self, prefix: str = "") -> list[str]:
        return [n for n in self._values if n.startswith(prefix)]

    def held_for(self, name: str, predicate: Callable[[float], bool]) -> float:
        """How long (seconds) the most recent run of values satisfying ``predicate`` has lasted,
        up to now; 0 when the last value does not satisfy it."""
        values = self._values.get(name)
        if not values or not predicate(values[-1][1]):
            return 0.0
        start = values[-1][0]
        for at, value in reversed(values):
            if not predicate(value):
                break
            start = at
        return self._clock() - start

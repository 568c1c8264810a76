"""Retries: full-jitter exponential backoff, bounded by a retry budget.

- Backoff is AWS's "full jitter": before retry ``n`` sleep a uniform random time in
  ``[0, min(max_delay, base_delay * 2 ** (n - 1))]``, so that callers who failed together do not
  retry together. A retry that moves to another member (failover) does not sleep.
- The budget is Finagle's: retries may add at most ``ratio`` (default 20 %) to the calls made in
  the last ``window`` seconds, plus ``min_per_second`` retries a second so that a quiet service
  can still retry. When a backend is down, retries then stop at +20 % load instead of multiplying
  it by ``max_attempts`` (a retry storm); the refused retry raises
  :class:`~tenantry.errors.RetryBudgetExhausted`, chained to the error that wanted it.

The loop is written here rather than with tenacity because each attempt may pick another member
(failover), and the budget and the no-sleep failover need to sit between attempts; tenacity's
``AsyncRetrying`` also costs tens of microseconds per call on this hot path.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenantry.errors import ConfigError, RetryBudgetExhausted

__all__ = ["Retrier", "RetryBudget", "RetryPolicy"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts (the first one included) and the backoff between them, in seconds."""

    max_attempts: int = 3
    base_delay: float = 0.05
    max_delay: float = 1.0
    budget_ratio: float = 0.2
    budget_min_per_second: float = 10.0
    budget_window: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ConfigError("retry policy needs max_attempts >= 1, 0 <= base_delay <= max_delay")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Full jitter before retry number ``retry`` (1 for the first retry)."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (retry - 1)))


class RetryBudget:
    """Retries allowed: ``ratio`` x calls in the window + ``min_per_second`` x window."""

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ratio < 0 or min_per_second < 0 or window <= 0:
            raise ConfigError("retry budget needs ratio >= 0, min_per_second >= 0, window > 0")
        self.ratio = ratio
        self.reserve = min_per_second * window
        self.window = window
        self._clock = clock
        self._buckets: deque[list[float]] = deque()  # [second, calls, retries]
        self._calls = 0.0
        self._retries = 0.0
        self.refused = 0

    def record_call(self) -> None:
        self._bucket()[1] += 1
        self._calls += 1

    def try_spend(self) -> bool:
        """Take one retry from the budget; False (and nothing taken) when it is used up."""
        bucket = self._bucket()
        if self._retries + 1 > self.reserve + self.ratio * self._calls:
            self.refused += 1
            return False
        bucket[2] += 1
        self._retries += 1
        return True

    def snapshot(self) -> dict[str, float | int]:
        self._bucket()
        return {
            "calls": int(self._calls),
            "retries": int(self._retries),
            "allowed": int(self.reserve + self.ratio * self._calls),
            "refused": self.refused,
        }

    def _bucket(self) -> list[float]:
        second = float(int(self._clock()))
        buckets = self._buckets
        while buckets and buckets[0][0] <= second - self.window:
            _, calls, retries = buckets.popleft()
            self._calls -= calls
            self._retries -= retries
        if not buckets or buckets[-1][0] != second:
            buckets.append([second, 0.0, 0.0])
        return buckets[-1]


class Retrier:
    """Runs an attempt function until it succeeds, fails for good, or the budget says stop."""

    def __init__(
        self,
        policy: RetryPolicy,
        budget: RetryBudget,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.policy = policy
        self.budget = budget
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._sleep = sleep

    async def run(
        self,
        attempt: Callable[[int], Awaitable[T]],
        retryable: Callable[[BaseException], bool],
        *,
        failover: Callable[[], bool] = lambda: False,
        max_attempts: int | None = None,
    ) -> T:
        """``await attempt(n)`` for n = 1, 2, ...; ``failover()`` True means: no sleep first."""
        limit = max_attempts or self.policy.max_attempts
        self.budget.record_call()
        number = 1
        while True:
            try:
                return await attempt(number)
            except Exception as exc:
                if number >= limit or not retryable(exc):
                    raise
                if not self.budget.try_spend():
                    raise RetryBudgetExhausted(
                        f"retry budget used up ({self.budget.ratio:.0%} of recent calls); "
                        f"last error: {type(exc).__name__}: {exc}",
                        retry_after=1.0,  # the budget follows the last seconds' calls
                    ) from exc
                if not failover():
                    await self._sleep(self.policy.backoff(number, self._rng))
            number += 1

"""Pool size that adapts to the measured checkout wait, between a minimum and a maximum.

Every backend's connections are handed out through a :class:`PoolGate`: an asyncio semaphore
whose limit can change, FIFO, that measures how long each checkout waited. Its limit is the pool
size: the backend's driver pool is built to hold up to ``max_size`` connections, and the gate
lets at most ``limit`` of them be in use. :class:`PoolSizer` moves the limit, once per
``interval``:

- grow by a quarter (at least 1), up to ``max_size``, when the EWMA of checkout waits is above
  ``grow_wait``: callers are queueing for connections;
- shrink by 1, down to ``min_size``, when the EWMA is below half of ``grow_wait`` and the peak
  in use during the interval stayed at or below ``shrink_utilization`` of the limit;
- otherwise stay. An interval without a checkout decays the EWMA by ``alpha`` (no waits seen).

Growing fast and shrinking slowly keeps queueing short under a burst and avoids flapping. The
sizer is pure (clock injected); the gate calls it on every checkout and release, and the
manager's health loop calls :meth:`PoolGate.tick` so that an idle pool shrinks as well. For
PostgreSQL replicas the driver pool keeps ``min_size`` idle connections and closes the others as
they come back (SQLAlchemy's overflow), so a smaller limit also means fewer open connections.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tenantry.errors import BackendUnavailable, ConfigError

__all__ = ["PoolGate", "PoolLimits", "PoolSizer", "ceil_share"]


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """Bounds of a pool: it starts at ``initial`` (default ``min_size``)."""

    min_size: int
    max_size: int
    initial: int | None = None

    def __post_init__(self) -> None:
        start = self.min_size if self.initial is None else self.initial
        if not 1 <= self.min_size <= start <= self.max_size:
            raise ConfigError(
                f"pool limits need 1 <= min_size <= initial <= max_size, got {self.min_size}, "
                f"{start}, {self.max_size}"
            )

    @classmethod
    def from_pool_size(cls, size: int, *, overflow: int = 5) -> PoolLimits:
        """``POSTGRES_POOL_SIZE`` as the starting size, half of it as the floor, +overflow."""
        return cls(min_size=max(1, size // 2), max_size=size + overflow, initial=size)

    @property
    def start(self) -> int:
        return self.min_size if self.initial is None else self.initial


class PoolSizer:
    """The controller: a limit within :class:`PoolLimits`, moved by the checkout-wait EWMA."""

    def __init__(
        self,
        limits: PoolLimits,
        *,
        grow_wait: float = 0.002,
        shrink_utilization: float = 0.5,
        interval: float = 1.0,
        alpha: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.size = limits.start
        self.grow_wait = grow_wait
        self.shrink_utilization = shrink_utilization
        self.interval = interval
        self.alpha = alpha
        self.wait_ewma = 0.0
        self._clock = clock
        self._last = clock()
        self._observed = False
        self._peak = 0
        self.grown = self.shrunk = 0

    def observe(self, wait: float, in_use: int) -> None:
        """A checkout that waited ``wait`` seconds; ``in_use`` counts it."""
        self.wait_ewma += self.alpha * (wait - self.wait_ewma)
        self._observed = True
        self._peak = max(self._peak, in_use)

    def adjust(self, in_use: int) -> int:
        """Apply the rule if an interval has passed; returns the (new) size."""
        now = self._clock()
        if now - self._last < self.interval:
            return self.size
        self._last = now
        if not self._observed:
            self.wait_ewma *= 1 - self.alpha
        limits = self.limits
        if self.wait_ewma > self.grow_wait and self.size < limits.max_size:
            self.size = min(limits.max_size, self.size + max(1, self.size // 4))
            self.grown += 1
        elif (
            self.wait_ewma < self.grow_wait / 2
            and self._peak <= self.size * self.shrink_utilization
            and self.size > limits.min_size
        ):
            self.size -= 1
            self.shrunk += 1
        self._observed = False
        self._peak = in_use
        return self.size


class PoolGate:
    """A FIFO, resizable semaphore over a backend's connections, sized by a :class:`PoolSizer`."""

    def __init__(
        self,
        name: str,
        sizer: PoolSizer,
        *,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.sizer = sizer
        self.timeout = timeout
        self.in_use = 0
        self.peak = 0
        self.timeouts = 0
        #: Checkouts so far, those that waited, and the waits of the recent ones that waited (the
        #: others waited 0): what the performance sampler reads the wait percentiles from.
        self.checkouts = self.waited = 0
        self.waits: deque[float] = deque(maxlen=4096)
        self._clock = clock
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        return self.sizer.size

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def try_acquire(self) -> bool:
        """Take a slot if one is free now, without waiting."""
        if self.in_use < self.sizer.size and not self._waiters:
            self._take(0.0)
            return True
        return False

    async def acquire(self) -> float:
        """Take a slot, waiting up to ``timeout`` (then :class:`BackendUnavailable`)."""
        if self.try_acquire():
            return 0.0
        started = self._clock()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.timeout):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._release_slot()  # the slot was handed over just as we gave up
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                self.timeouts += 1
                raise BackendUnavailable(
                    f"{self.name}: no connection free within {self.timeout:g} s "
                    f"(pool size {self.sizer.size})",
                    retry_after=1.0,
                ) from None
            raise
        waited = self._clock() - started
        self.checkouts += 1
        self.waited += 1
        self.waits.append(waited)
        self.sizer.observe(waited, self.in_use)  # the slot was counted when handed over
        return waited

    def release(self) -> None:
        self._release_slot()

    def tick(self) -> int:
        """Let the sizer act without a checkout (the health loop calls this, so that an idle
        pool shrinks too); returns the size."""
        self._resize()
        return self.sizer.size

    def set_max_size(self, max_size: int) -> None:
        """Move the ceiling the sizer may grow to (the performance manager's knob): the floor
        follows it down when needed, a size above the new ceiling comes down to it at once
        (calls in flight finish; no new one starts beyond it), and waiters are let in when it
        rises above what is in use."""
        if type(max_size) is not int or max_size < 1:
            raise ConfigError(f"{self.name}: max_size must be a positive int, not {max_size!r}")
        old = self.sizer.limits
        floor = min(old.min_size, max_size)
        self.sizer.limits = PoolLimits(floor, max_size, min(max(old.start, floor), max_size))
        self.sizer.size = min(max(self.sizer.size, floor), max_size)
        if max_size > old.max_size and self.sizer.wait_ewma > self.sizer.grow_wait:
            self.sizer.size = max_size  # the wait that asked for it is still there
        self._resize()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        waited = await self.acquire()
        try:
            yield waited
        finally:
            self.release()

    def snapshot(self) -> dict[str, float | int]:
        return {
            "limit": self.sizer.size,
            "min_size": self.sizer.limits.min_size,
            "max_size": self.sizer.limits.max_size,
            "in_use": self.in_use,
            "waiting": len(self._waiters),
            "peak_in_use": self.peak,
            "wait_ewma_ms": round(self.sizer.wait_ewma * 1000, 3),
            "grown": self.sizer.grown,
            "shrunk": self.sizer.shrunk,
            "timeouts": self.timeouts,
        }

    def _take(self, waited: float) -> None:
        self.checkouts += 1
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)
        self.sizer.observe(waited, self.in_use)
        self._resize()

    def _release_slot(self) -> None:
        self.in_use -= 1
        self._resize()

    def _resize(self) -> None:
        size = self.sizer.adjust(self.in_use)
        while self._waiters and self.in_use < size:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1  # handed over: counted here so nobody can jump the queue
                self.peak = max(self.peak, self.in_use)
                waiter.set_result(None)


def ceil_share(size: int, share: float) -> int:
    """``ceil(size * share)``, at least 1: a tenant's part of a pool."""
    return max(1, math.ceil(size * share))

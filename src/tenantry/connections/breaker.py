"""A rate-based circuit breaker: failure rate and slow-call rate over a sliding window.

The rules are Resilience4j's count-based breaker:

- CLOSED: every call is let through; its outcome (failed or not, slow or not) goes into a window
  of the last ``window_size`` outcomes (``window.py``). Once it holds ``minimum_calls`` of them,
  a failure rate ``>= failure_rate_threshold`` or a slow-call rate ``>= slow_call_rate_threshold``
  (a call is slow when it took ``>= slow_call_duration`` seconds) opens the breaker.
- OPEN: every call is refused (:class:`~tenantry.errors.CircuitOpen`) for ``open_duration``
  seconds, then the breaker is HALF_OPEN (checked lazily, on the next look at it).
- HALF_OPEN: ``half_open_max_calls`` probe calls are let through, no more. Their outcomes decide:
  when the failures (or slow calls) among the probes reach the threshold the breaker opens again
  at once; when every probe has reported without that, it closes with an empty window. Probes
  that never report within ``open_duration`` count as failures, so a lost probe cannot wedge it.

The state sits behind a :class:`threading.Lock` held only for the few bookkeeping lines of
:meth:`allow` and :meth:`record_success` / :meth:`record_failure`, never across the call itself
(pybreaker holds its lock across ``call``). Outcomes of calls admitted before a state change are
matched to their epoch and dropped, so a slow call from the CLOSED era cannot close a HALF_OPEN
breaker. Listeners (``on_change``) run after the lock is released.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TypeVar

from tenantry.connections.window import FAILED, SLOW, OutcomeWindow
from tenantry.errors import CircuitOpen, ConfigError

__all__ = ["BreakerListener", "BreakerState", "CircuitBreaker"]

T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_CLOSED = BreakerState.CLOSED

# The defaults of CircuitBreaker's settings (BreakerConfig in backends.py takes them too).
FAILURE_RATE_THRESHOLD = 0.5
SLOW_CALL_RATE_THRESHOLD = 1.0
SLOW_CALL_DURATION = 1.0
WINDOW_SIZE = 50
MINIMUM_CALLS = 10
OPEN_DURATION = 5.0
HALF_OPEN_MAX_CALLS = 3


BreakerListener = Callable[["CircuitBreaker", BreakerState, BreakerState], None]


class CircuitBreaker:
    """One breaker. ``allow()`` then ``record_*()``, or ``await call(fn)`` for both."""

    def __init__(
        self,
        name: str,
        *,
        failure_rate_threshold: float = FAILURE_RATE_THRESHOLD,
        slow_call_rate_threshold: float = SLOW_CALL_RATE_THRESHOLD,
        slow_call_duration: float = SLOW_CALL_DURATION,
        window_size: int = WINDOW_SIZE,
        minimum_calls: int = MINIMUM_CALLS,
        open_duration: float = OPEN_DURATION,
        half_open_max_calls: int = HALF_OPEN_MAX_CALLS,
        clock: Callable[[], float] = time.monotonic,
        on_change: BreakerListener | None = None,
    ) -> None:
        if not (
            0 < failure_rate_threshold <= 1
            and 0 < slow_call_rate_threshold <= 1
            and 1 <= minimum_calls <= window_size
            and half_open_max_calls >= 1
            and min(open_duration, slow_call_duration) > 0
        ):
            raise ConfigError(
                f"breaker {name!r}: need rate thresholds in (0, 1], window_size >= "
                "minimum_calls >= 1, half_open_max_calls >= 1 and positive durations"
            )
        self.name = name
        self.failure_rate_threshold = failure_rate_threshold
        self.slow_call_rate_threshold = slow_call_rate_threshold
        self.slow_call_duration = slow_call_duration
        self.window_size = window_size
        self.minimum_calls = minimum_calls
        self.open_duration = open_duration
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock
        self._listeners: list[BreakerListener] = [on_change] if on_change else []
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._epoch = 0
        self._window = OutcomeWindow(window_size)
        self._opened_at: float | None = None
        self._half_open_at = 0.0
        self._probes = self._probe_done = self._probe_failures = self._probe_slow = 0
        self.times_opened = 0
        self.rejected = 0

    @property
    def state(self) -> BreakerState:
        """The state now (an OPEN breaker whose ``open_duration`` has passed is HALF_OPEN)."""
        if self._state is _CLOSED:
            return _CLOSED
        with self._lock:
            change = self._advance()
        self._notify(change)
        return self._state

    @property
    def available(self) -> bool:
        """Whether :meth:`allow` would say yes now; takes no probe slot (for balancers)."""
        if self._state is _CLOSED:
            return True
        with self._lock:
            change = self._advance()
            free = self._state is BreakerState.CLOSED or (
                self._state is BreakerState.HALF_OPEN and self._probes < self.half_open_max_calls
            )
        self._notify(change)
        return free

    @property
    def retry_in(self) -> float:
        """Seconds until an open breaker lets probe calls through (0 when it is not open: a
        half-open one frees a slot as soon as a probe reports)."""
        opened_at = self._opened_at
        if self._state is not BreakerState.OPEN or opened_at is None:
            return 0.0
        return max(0.0, opened_at + self.open_duration - self._clock())

    def allow(self) -> bool:
        """False when open (or half-open with every probe slot taken); True takes a probe slot."""
        return self.admit() is not None

    def record_success(self, duration: float) -> None:
        self.settle(None, duration, failed=False)

    def record_failure(self, duration: float) -> None:
        self.settle(None, duration, failed=True)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` if allowed (else :class:`CircuitOpen`) and record how it went.

        Every exception counts as a failure, except :class:`asyncio.CancelledError`, which gives
        the probe slot back and records nothing.
        """
        epoch = self.admit()
        if epoch is None:
            raise CircuitOpen(f"circuit {self.name!r} is open", retry_after=self.retry_in)
        clock = self._clock
        started = clock()
        try:
            result = await fn()
        except Exception:
            self.settle(epoch, clock() - started, failed=True)
            raise
        except BaseException:
            self.cancel(epoch)
            raise
        self.settle(epoch, clock() - started, failed=False)
        return result

    def call_sync(self, fn: Callable[[], T]) -> T:
        """:meth:`call` for a synchronous ``fn`` (safe from several threads)."""
        epoch = self.admit()
        if epoch is None:
            raise CircuitOpen(f"circuit {self.name!r} is open", retry_after=self.retry_in)
        clock = self._clock
        started = clock()
        try:
            result = fn()
        except Exception:
            self.settle(epoch, clock() - started, failed=True)
            raise
        self.settle(epoch, clock() - started, failed=False)
        return result

    def admit(self) -> int | None:
        """Like :meth:`allow`, returning the epoch to pass to :meth:`settle` (None: refused)."""
        if self._state is _CLOSED:
            # No lock on the hot path: if the state changes at this instant, the epoch read
            # here no longer matches and this one call's outcome is dropped, nothing worse.
            return self._epoch
        with self._lock:
            change = self._advance()
            state = self._state
            if state is _CLOSED:
                epoch: int | None = self._epoch
            elif state is BreakerState.HALF_OPEN and self._probes < self.half_open_max_calls:
                self._probes += 1
                epoch = self._epoch
            else:
                self.rejected += 1
                epoch = None
        if change is not None:
            self._notify(change)
        return epoch

    def settle(self, epoch: int | None, duration: float, *, failed: bool) -> None:
        """Record an outcome; one from an earlier epoch (``epoch`` given) is dropped."""
        flags = (FAILED if failed else 0) | (SLOW if duration >= self.slow_call_duration else 0)
        with self._lock:
            change = None if self._state is _CLOSED else self._advance()
            if epoch is None or epoch == self._epoch:
                if self._state is _CLOSED:
                    change = self._record_closed(flags) or change
                elif self._state is BreakerState.HALF_OPEN:
                    change = self._record_probe(flags) or change
        if change is not None:
            self._notify(change)

    def cancel(self, epoch: int | None) -> None:
        """The admitted call did not happen: give its probe slot back, record nothing."""
        with self._lock:
            if epoch == self._epoch and self._state is BreakerState.HALF_OPEN and self._probes:
                self._probes -= 1

    def reset(self) -> None:
        """Close the breaker with an empty window (an operator's override)."""
        with self._lock:
            change = self._to(BreakerState.CLOSED)
        self._notify(change)

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            change = self._advance()
            window, opened_at = self._window, self._opened_at
            info: dict[str, object] = {
                "name": self.name,
                "state": self._state.value,
                "failure_rate": round(window.failure_rate, 4),
                "slow_call_rate": round(window.slow_call_rate, 4),
                "calls_in_window": window.count,
                "window_size": self.window_size,
                "minimum_calls": self.minimum_calls,
                "opened_at": opened_at,
                "retry_in": max(0.0, opened_at + self.open_duration - self._clock())
                if self._state is BreakerState.OPEN and opened_at is not None
                else 0.0,
                "half_open_probes": self._probes,
                "times_opened": self.times_opened,
                "rejected": self.rejected,
            }
        self._notify(change)
        return info

    # -- internals, called with the lock held ----------------------------------------------------
    def _record_closed(self, flags: int) -> tuple[BreakerState, BreakerState] | None:
        window = self._window
        window.add(flags)
        count = window.count
        if not flags and count != self.minimum_calls:
            return None  # a fast success lowers both rates: it cannot open the breaker
        if count >= self.minimum_calls and (
            window.failures >= self.failure_rate_threshold * count
            or window.slow >= self.slow_call_rate_threshold * count
        ):
            return self._to(BreakerState.OPEN)
        return None

    def _record_probe(self, flags: int) -> tuple[BreakerState, BreakerState] | None:
        self._probe_done += 1
        self._probe_failures += flags & FAILED
        self._probe_slow += flags >> 1
        limit = self.half_open_max_calls
        if (
            self._probe_failures >= self.failure_rate_threshold * limit
            or self._probe_slow >= self.slow_call_rate_threshold * limit
        ):
            return self._to(BreakerState.OPEN)
        if self._probe_done >= limit:
            return self._to(BreakerState.CLOSED)
        return None

    def _advance(self) -> tuple[BreakerState, BreakerState] | None:
        """Time-driven changes: OPEN -> HALF_OPEN, and HALF_OPEN with lost probes -> OPEN."""
        state = self._state
        if state is BreakerState.OPEN:
            if self._clock() - (self._opened_at or 0.0) >= self.open_duration:
                return self._to(BreakerState.HALF_OPEN)
        elif (
            state is BreakerState.HALF_OPEN
            and self._probes >= self.half_open_max_calls
            and self._clock() - self._half_open_at >= self.open_duration
        ):
            return self._to(BreakerState.OPEN)
        return None

    def _to(self, new: BreakerState) -> tuple[BreakerState, BreakerState] | None:
        old = self._state
        self._state = new
        self._epoch += 1
        self._probes = self._probe_done = self._probe_failures = self._probe_slow = 0
        now = self._clock()
        if new is BreakerState.OPEN:
            self._opened_at = now
            self.times_opened += 1
        elif new is BreakerState.HALF_OPEN:
            self._half_open_at = now
        else:
            self._opened_at = None
            self._window.clear()
        return None if old is new else (old, new)

    def _notify(self, change: tuple[BreakerState, BreakerState] | None) -> None:
        if change is not None:
            for listener in self._listeners:
                listener(self, *change)

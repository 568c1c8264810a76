"""The circuit breaker's rules, on a fake clock; and that it holds no lock across a call."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry.connections import BreakerConfig, BreakerState, CircuitBreaker
from tenantry.errors import CircuitOpen, ConfigError
from tests.connections.conftest import FakeClock


def breaker(clock: FakeClock, **knobs: object) -> CircuitBreaker:
    settings: dict[str, object] = {
        "window_size": 10,
        "minimum_calls": 4,
        "open_duration": 5.0,
        "half_open_max_calls": 2,
        "slow_call_duration": 1.0,
        **knobs,
    }
    return CircuitBreaker("test", clock=clock, **settings)  # type: ignore[arg-type]


def test_stays_closed_until_the_minimum_number_of_calls(clock: FakeClock) -> None:
    b = breaker(clock)
    for _ in range(3):
        b.record_failure(0.01)
    assert b.state is BreakerState.CLOSED  # 3 failures of 3, but fewer than minimum_calls
    b.record_failure(0.01)
    assert b.state is BreakerState.OPEN
    assert not b.allow()
    assert b.snapshot()["rejected"] == 1


def test_opens_at_the_failure_rate_threshold(clock: FakeClock) -> None:
    b = breaker(clock)
    for ok in (True, True, True, False, True, False):  # 2 of 6 = 33 %: closed
        b.record_success(0.01) if ok else b.record_failure(0.01)
    assert b.state is BreakerState.CLOSED
    assert b.snapshot()["failure_rate"] == pytest.approx(2 / 6, abs=1e-3)
    b.record_failure(0.01)
    b.record_failure(0.01)  # 4 of 8 = 50 %
    assert b.state is BreakerState.OPEN


def test_the_window_slides(clock: FakeClock) -> None:
    b = breaker(clock, window_size=4, minimum_calls=4)
    for _ in range(4):
        b.record_success(0.01)
    b.record_failure(0.01)  # window: S S S F
    assert b.state is BreakerState.CLOSED
    assert b.snapshot()["calls_in_window"] == 4
    b.record_failure(0.01)  # window: S S F F -> 50 %
    assert b.state is BreakerState.OPEN


def test_opens_on_the_slow_call_rate(clock: FakeClock) -> None:
    b = breaker(clock, slow_call_rate_threshold=0.5)
    b.record_success(0.01)
    b.record_success(0.01)
    b.record_success(1.5)
    assert b.state is BreakerState.CLOSED
    b.record_success(2.0)  # 2 slow of 4, all successful
    assert b.state is BreakerState.OPEN


def test_half_open_lets_a_bounded_number_of_probes_through(clock: FakeClock) -> None:
    b = breaker(clock)
    for _ in range(4):
        b.record_failure(0.01)
    clock.advance(4.9)
    assert b.state is BreakerState.OPEN
    assert b.snapshot()["retry_in"] == pytest.approx(0.1)
    clock.advance(0.1)
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()
    assert b.allow()
    assert not b.allow()  # half_open_max_calls = 2
    assert not b.available
    b.record_success(0.01)
    assert b.state is BreakerState.HALF_OPEN
    b.record_success(0.01)
    assert b.state is BreakerState.CLOSED
    assert b.snapshot()["calls_in_window"] == 0


def test_a_failed_probe_opens_it_again(clock: FakeClock) -> None:
    b = breaker(clock, half_open_max_calls=2)
    for _ in range(4):
        b.record_failure(0.01)
    clock.advance(5)
    assert b.allow()
    b.record_failure(0.01)  # 1 of 2 probes = 50 %: the threshold
    assert b.state is BreakerState.OPEN
    assert b.snapshot()["times_opened"] == 2


def test_lost_probes_do_not_wedge_it(clock: FakeClock) -> None:
    b = breaker(clock)
    for _ in range(4):
        b.record_failure(0.01)
    clock.advance(5)
    assert b.allow()
    assert b.allow()  # both probes taken, neither reports back
    clock.advance(5)
    assert b.state is BreakerState.OPEN  # counted as failed
    clock.advance(5)
    assert b.allow()


def test_outcomes_from_before_a_state_change_are_dropped(clock: FakeClock) -> None:
    b = breaker(clock, half_open_max_calls=1)
    slow_call = b.admit()  # admitted while closed
    for _ in range(4):
        b.record_failure(0.01)
    clock.advance(5)
    probe = b.admit()
    assert probe is not None
    b.settle(slow_call, 0.01, failed=False)  # the old call's success must not close it
    assert b.state is BreakerState.HALF_OPEN
    b.settle(probe, 0.01, failed=False)
    assert b.state is BreakerState.CLOSED


def test_listeners_hear_every_change(clock: FakeClock) -> None:
    changes: list[tuple[str, str]] = []
    b = breaker(clock, on_change=lambda _, old, new: changes.append((old.value, new.value)))
    for _ in range(4):
        b.record_failure(0.01)
    clock.advance(5)
    assert b.allow()
    b.record_success(0.01)
    assert b.allow()
    b.record_success(0.01)
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


async def test_call_raises_circuit_open_and_records_errors(clock: FakeClock) -> None:
    b = breaker(clock)

    async def boom() -> None:
        clock.advance(0.5)
        raise ValueError("no")

    for _ in range(4):
        with pytest.raises(ValueError, match="no"):
            await b.call(boom)
    with pytest.raises(CircuitOpen, match="'test' is open"):
        await b.call(boom)
    clock.advance(5)

    async def fine() -> int:
        return 7

    assert await b.call(fine) == 7
    assert b.state is BreakerState.HALF_OPEN


async def test_a_cancelled_probe_gives_its_slot_back(clock: FakeClock) -> None:
    b = breaker(clock, half_open_max_calls=1)
    for _ in range(4):
        b.record_failure(0.01)
    clock.advance(5)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(b.call(hang))
    await started.wait()
    assert not b.available  # the only probe slot is in use
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.available
    assert b.state is BreakerState.HALF_OPEN


def test_no_lock_is_held_across_the_call() -> None:
    """A call blocked in one thread must not block allow()/state in another (pybreaker's call
    holds its lock for the whole call)."""
    b = CircuitBreaker("threads")
    entered, release = threading.Event(), threading.Event()

    def blocking() -> str:
        entered.set()
        release.wait(10)
        return "done"

    worker = threading.Thread(target=lambda: b.call_sync(blocking))
    worker.start()
    assert entered.wait(10)
    answered = threading.Event()

    def ask() -> None:
        b.allow()
        b.record_success(0.001)
        assert b.state is BreakerState.CLOSED
        answered.set()

    asker = threading.Thread(target=ask)
    asker.start()
    assert answered.wait(5), "allow() waited for a call in another thread"
    release.set()
    worker.join(10)
    asker.join(10)


@pytest.mark.parametrize(
    "knobs",
    [
        {"failure_rate_threshold": 0},
        {"failure_rate_threshold": 1.5},
        {"minimum_calls": 11},
        {"window_size": 0},
        {"half_open_max_calls": 0},
        {"open_duration": 0},
    ],
)
def test_bad_settings_are_refused(clock: FakeClock, knobs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        breaker(clock, **knobs)


def test_config_builds_alike_breakers(clock: FakeClock) -> None:
    config = BreakerConfig(window_size=20, minimum_calls=5, open_duration=1.0)
    one = config.build("a", clock=clock)
    assert (one.name, one.window_size, one.minimum_calls, one.open_duration) == ("a", 20, 5, 1.0)
    assert set(one.snapshot()) >= {"state", "failure_rate", "slow_call_rate", "calls_in_window"}


@given(st.lists(st.booleans(), max_size=60))
def test_it_opens_exactly_when_the_window_crosses_the_threshold(outcomes: list[bool]) -> None:
    """Against a reference model: the last 10 outcomes, at least 4, >= 50 % failed."""
    clock = FakeClock()
    b = breaker(clock)
    window: list[bool] = []
    for failed in outcomes:
        b.settle(None, 0.01, failed=failed)
        window = [*window, failed][-10:]
        should_open = len(window) >= 4 and sum(window) >= 0.5 * len(window)
        assert (b.state is BreakerState.OPEN) == should_open
        if should_open:
            return

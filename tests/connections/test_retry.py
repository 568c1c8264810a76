"""Full-jitter backoff, the retry budget and the retry loop."""

from __future__ import annotations

import random

import pytest

from tenantry.connections import Retrier, RetryBudget, RetryPolicy
from tenantry.errors import ConfigError, RetryBudgetExhausted
from tests.connections.conftest import FakeClock


def test_full_jitter_stays_within_the_exponential_cap() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=0.5)
    rng = random.Random(3)
    for retry, cap in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (9, 0.5)):
        delays = [policy.backoff(retry, rng) for _ in range(500)]
        assert min(delays) >= 0
        assert max(delays) <= cap
        assert max(delays) > cap * 0.9  # the whole range is used: full jitter
    with pytest.raises(ConfigError):
        RetryPolicy(max_attempts=0)


def test_the_budget_is_a_share_of_recent_calls_plus_a_reserve(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.1, min_per_second=0.5, window=4, clock=clock)  # reserve 2
    assert budget.try_spend()
    assert budget.try_spend()
    assert not budget.try_spend()
    for _ in range(30):
        budget.record_call()
    assert sum(budget.try_spend() for _ in range(10)) == 3  # 2 + 10 % of 30 = 5 in all
    assert budget.snapshot() == {"calls": 30, "retries": 5, "allowed": 5, "refused": 8}
    clock.advance(5)  # the window has passed: calls and retries are forgotten
    assert budget.snapshot()["retries"] == 0
    assert budget.try_spend()


async def test_the_retrier_retries_with_backoff_and_then_gives_up(clock: FakeClock) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    retrier = Retrier(
        RetryPolicy(max_attempts=3), RetryBudget(clock=clock), rng=random.Random(1), sleep=sleep
    )
    calls: list[int] = []

    async def flaky(n: int) -> str:
        calls.append(n)
        if n < 3:
            raise ConnectionError("reset")
        return "ok"

    assert await retrier.run(flaky, lambda e: isinstance(e, ConnectionError)) == "ok"
    assert calls == [1, 2, 3]
    assert len(slept) == 2

    async def always(n: int) -> str:
        raise ConnectionError(f"attempt {n}")

    with pytest.raises(ConnectionError, match="attempt 3"):
        await retrier.run(always, lambda e: True)
    with pytest.raises(ValueError, match="not retryable"):
        await retrier.run(_raise_value_error, lambda e: isinstance(e, ConnectionError))
    slept.clear()
    await retrier.run(flaky_once(), lambda e: True, failover=lambda: True)
    assert slept == []  # failover to another member does not sleep


async def test_an_exhausted_budget_stops_retries(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.25, window=4, clock=clock)  # 1 retry
    retrier = Retrier(RetryPolicy(max_attempts=5, base_delay=0), budget)

    async def down(n: int) -> None:
        raise ConnectionError("refused")

    with pytest.raises(RetryBudgetExhausted, match="retry budget used up") as info:
        await retrier.run(down, lambda e: True)
    assert isinstance(info.value.__cause__, ConnectionError)


async def _raise_value_error(n: int) -> None:
    raise ValueError("not retryable")


def flaky_once() -> object:
    state = {"n": 0}

    async def run(n: int) -> int:
        state["n"] += 1
        if state["n"] == 1:
            raise ConnectionError
        return n

    return run

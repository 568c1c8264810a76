"""The overhead of a circuit breaker per call: tenantry's against pybreaker, in the same run.

Every row wraps the same trivial operation (a function returning a constant, or a coroutine
that returns one without suspending), so the difference between a row and its baseline is the
breaker's own cost. Both breakers are closed, except in the "open" rows, which measure refusing
a call. Rows:

- sync: no breaker (baseline); ``pybreaker.CircuitBreaker.call``; tenantry's ``call_sync``;
  tenantry's ``allow()`` + ``record_success()`` pair.
- async: no breaker (baseline); pybreaker's ``with breaker.calling(): await fn()`` (pybreaker's
  own ``call_async`` needs Tornado); tenantry's ``await breaker.call(fn)``; and the manager's
  whole guard (tenant bulkhead lane, breaker, pool gate, member statistics) around the call.
- open: refusing a call, ``pybreaker.CircuitBreakerError`` against ``CircuitOpen``.

Calls are timed in batches of 100 (``Case.batch``); the rows report per call. Every call goes
through one wrapper (a function or a coroutine function), baselines included.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pybreaker

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from tenantry.connections import BreakerConfig, CircuitBreaker, PoolLimits
from tenantry.connections.backends import Member, Pool
from tenantry.connections.guard import guarded
from tenantry.errors import CircuitOpen

__all__ = ["BENCHMARK"]

#: Calls per timed sample: a call takes about a microsecond, too short to time alone.
BATCH = 100

SYNC_NONE = "breaker sync: no breaker"
SYNC_PY = "breaker sync: pybreaker call"
SYNC_OURS = "breaker sync: tenantry call_sync"
SYNC_PAIR = "breaker sync: tenantry allow + record"
ASYNC_NONE = "breaker async: no breaker"
ASYNC_PY = "breaker async: pybreaker calling()"
ASYNC_OURS = "breaker async: tenantry call"
ASYNC_GUARD = "breaker async: tenantry guard (bulkhead+breaker+pool)"
OPEN_PY = "breaker open: pybreaker refuses"
OPEN_OURS = "breaker open: tenantry refuses"


def work() -> int:
    return 1


async def awork() -> int:
    return 1


def sync_case(name: str, op: Callable[[], object], peer: str | None = None) -> Case:
    async def run() -> None:
        for _ in range(BATCH):
            op()

    return Case(name, run, peer=peer, batch=BATCH)


def async_case(name: str, op: Callable[[], Awaitable[object]], peer: str | None = None) -> Case:
    async def run() -> None:
        for _ in range(BATCH):
            await op()

    return Case(name, run, peer=peer, batch=BATCH)


def sync_cases() -> list[Case]:
    ours, theirs = CircuitBreaker("bench-sync"), pybreaker.CircuitBreaker(fail_max=5)
    clock = time.monotonic  # the breaker's default clock, as call_sync reads it

    def pair() -> None:
        if ours.allow():
            started = clock()
            work()
            ours.record_success(clock() - started)

    return [
        sync_case(SYNC_NONE, work),
        sync_case(SYNC_PY, lambda: theirs.call(work), peer=SYNC_NONE),
        sync_case(SYNC_OURS, lambda: ours.call_sync(work), peer=SYNC_PY),
        sync_case(SYNC_PAIR, pair, peer=SYNC_PY),
    ]


def async_cases() -> list[Case]:
    ours, theirs = CircuitBreaker("bench-async"), pybreaker.CircuitBreaker(fail_max=5)
    member = Member("bench-member", role="bench", breaker=BreakerConfig())
    pool = Pool("bench-pool", PoolLimits(10, 10))

    async def none() -> None:
        await awork()

    async def py() -> None:
        with theirs.calling():
            await awork()

    async def call() -> None:
        await ours.call(awork)

    async def guard() -> None:
        async with guarded(member, pool, "bench-tenant", lambda _: True):
            await awork()

    return [
        async_case(ASYNC_NONE, none),
        async_case(ASYNC_PY, py, peer=ASYNC_NONE),
        async_case(ASYNC_OURS, call, peer=ASYNC_PY),
        async_case(ASYNC_GUARD, guard, peer=ASYNC_PY),
    ]


def open_cases() -> list[Case]:
    ours = CircuitBreaker("bench-open", minimum_calls=1, window_size=1, open_duration=3600)
    ours.record_failure(0.0)
    theirs = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=3600)
    theirs.open()

    def py() -> None:
        try:  # noqa: SIM105 - try/except is cheaper than suppress(); both rows use it
            theirs.call(work)
        except pybreaker.CircuitBreakerError:
            pass

    def refuse() -> None:
        try:  # noqa: SIM105 - as above
            ours.call_sync(work)
        except CircuitOpen:
            pass

    return [sync_case(OPEN_PY, py), sync_case(OPEN_OURS, refuse, peer=OPEN_PY)]


def verify() -> None:
    """Check, before timing, that a closed breaker calls through and an open one refuses."""
    assert CircuitBreaker("check").call_sync(work) == 1
    assert pybreaker.CircuitBreaker().call(work) == 1
    ours = CircuitBreaker("check-open", minimum_calls=1, window_size=1, open_duration=3600)
    ours.record_failure(0.0)
    assert not ours.allow()
    theirs = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=3600)
    theirs.open()
    try:
        theirs.call(work)
    except pybreaker.CircuitBreakerError:
        pass
    else:
        raise AssertionError("an open pybreaker let a call through")


async def run(env: Environment, plan: Plan) -> list[Row]:
    verify()
    cases = [*sync_cases(), *async_cases(), *open_cases()]
    return await run_cases(cases, plan, module="breaker")


BENCHMARK = Benchmark(
    name="breaker",
    operations=(
        SYNC_NONE,
        SYNC_PY,
        SYNC_OURS,
        SYNC_PAIR,
        ASYNC_NONE,
        ASYNC_PY,
        ASYNC_OURS,
        ASYNC_GUARD,
        OPEN_PY,
        OPEN_OURS,
    ),
    run=run,
)

"""The adaptive pool size: the controller on a fake clock, the gate, and one real run."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tenantry.connections import ConnectionManager, PoolGate, PoolLimits, PoolSizer
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import BackendUnavailable, ConfigError
from tests.connections.conftest import FakeClock


def sizer(clock: FakeClock, lo: int = 2, hi: int = 10, start: int = 4) -> PoolSizer:
    return PoolSizer(PoolLimits(lo, hi, start), grow_wait=0.002, interval=1.0, clock=clock)


def test_limits_are_checked_and_derived_from_the_pool_size() -> None:
    assert PoolLimits.from_pool_size(10) == PoolLimits(5, 15, 10)
    assert PoolLimits.from_pool_size(1) == PoolLimits(1, 6, 1)
    with pytest.raises(ConfigError):
        PoolLimits(3, 2)
    with pytest.raises(ConfigError):
        PoolLimits(2, 5, initial=6)


def test_it_grows_by_a_quarter_when_checkouts_wait(clock: FakeClock) -> None:
    s = sizer(clock, start=8, hi=12)
    for _ in range(5):
        s.observe(0.010, in_use=8)
    assert s.adjust(in_use=8) == 8  # not before an interval has passed
    clock.advance(1)
    assert s.adjust(in_use=8) == 10
    s.observe(0.010, in_use=10)
    clock.advance(1)
    assert s.adjust(in_use=10) == 12
    s.observe(0.010, in_use=12)
    clock.advance(1)
    assert s.adjust(in_use=12) == 12  # the ceiling
    assert s.grown == 2


def test_it_shrinks_by_one_when_idle_down_to_the_floor(clock: FakeClock) -> None:
    s = sizer(clock, start=4)
    sizes = []
    for _ in range(4):
        s.observe(0.0, in_use=1)
        clock.advance(1)
        sizes.append(s.adjust(in_use=0))
    assert sizes == [3, 2, 2, 2]
    assert s.shrunk == 2


def test_it_holds_while_busy_without_waiting(clock: FakeClock) -> None:
    s = sizer(clock, start=4)
    s.observe(0.0, in_use=4)  # fully used, but nobody waited
    clock.advance(1)
    assert s.adjust(in_use=4) == 4


def test_an_interval_without_checkouts_decays_the_wait(clock: FakeClock) -> None:
    s = sizer(clock)
    s.observe(0.010, in_use=4)
    clock.advance(1)
    s.adjust(in_use=0)  # grows once on the waits seen
    before = s.wait_ewma
    clock.advance(1)
    s.adjust(in_use=0)
    assert s.wait_ewma == pytest.approx(before * 0.7)


async def test_the_gate_is_fifo_and_hands_slots_over(clock: FakeClock) -> None:
    gate = PoolGate("g", PoolSizer(PoolLimits(1, 1), clock=clock), timeout=5, clock=clock)
    await gate.acquire()
    order: list[int] = []

    async def user(n: int) -> None:
        async with gate.slot():
            order.append(n)
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(user(n)) for n in range(4)]
    await asyncio.sleep(0.01)
    assert gate.waiting == 4
    gate.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]
    assert (gate.in_use, gate.waiting, gate.peak) == (0, 0, 1)


async def test_the_gate_times_out_and_cancelled_waiters_leak_nothing() -> None:
    gate = PoolGate("g", PoolSizer(PoolLimits(1, 1)), timeout=0.05)
    await gate.acquire()
    with pytest.raises(BackendUnavailable, match=r"no connection free within 0\.05 s"):
        await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.release()
    assert (gate.in_use, gate.waiting, gate.timeouts) == (0, 0, 1)


async def test_growing_lets_waiters_in(clock: FakeClock) -> None:
    gate = PoolGate("g", sizer(clock, lo=1, hi=4, start=1), timeout=5, clock=clock)
    await gate.acquire()
    waiters = [asyncio.create_task(gate.acquire()) for _ in range(2)]
    await asyncio.sleep(0.01)
    gate.sizer.observe(0.5, in_use=1)  # as if the queue had been long
    clock.advance(1)
    assert gate.tick() == 2
    await asyncio.sleep(0.01)
    assert sum(w.done() for w in waiters) == 1
    assert gate.in_use == 2
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert gate.waiting == 0


async def test_a_real_pool_grows_under_load_and_shrinks_when_idle(
    runtime: DatabaseRuntime, db: Database
) -> None:
    """A replica (the embedded server) starting at 1 connection, 30 readers of 20 ms each."""
    manager = ConnectionManager(
        runtime.settings,
        primary=db,
        replicas=[runtime.app_url],
        pool_limits=PoolLimits(1, 6),
        resize_interval=0.05,
        health_interval=0,
    )
    replica = manager.replicas[0]
    try:

        async def reader() -> None:
            for _ in range(4):
                async with manager.read_transaction() as conn:
                    await conn.execute(text("select pg_sleep(0.02)"))

        await asyncio.gather(*(reader() for _ in range(30)))
        gate = replica.pool.gate
        assert gate.sizer.grown >= 1
        assert gate.peak > 1
        assert replica.driver_pool()["checked_out"] == 0
        for _ in range(20):  # idle: the health loop's ticks shrink it back
            await asyncio.sleep(0.06)
            gate.tick()
        assert gate.limit == 1
        assert replica.driver_pool()["idle"] <= 1  # SQLAlchemy closed the overflow
        assert replica.stats.calls == 120
        assert manager.primary_member is not None
        assert manager.primary_member.stats.calls == 0  # every read went to the replica
    finally:
        await manager.close()

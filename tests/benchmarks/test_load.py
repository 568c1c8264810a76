"""The load driver's arithmetic (benchmarks/load.py): what it counts, and from when.

No speed is asserted: only what holds however fast the machine is (a sleeping operation's
latency is at least its sleep; an arrival queued behind others waits for them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest

from benchmarks.load import (
    InProcess,
    Load,
    LoadPlan,
    Processes,
    Run,
    Target,
    TargetContext,
    closed_loop,
    measure_load,
    open_loop,
)

MS = 1_000_000
CONTEXT = TargetContext("postgresql+asyncpg://nobody@127.0.0.1/none", 1, 0)


@asynccontextmanager
async def sleeper(context: TargetContext, ms: float) -> AsyncIterator[Load]:
    """A target (importable by worker processes): an operation that sleeps ``ms``."""
    del context

    async def op() -> None:
        await asyncio.sleep(ms / 1000)

    yield Load(op)


def sleeping(ms: float) -> Load:
    async def op() -> None:
        await asyncio.sleep(ms / 1000)

    return Load(op)


def test_runs_combine_one_after_another_and_alongside() -> None:
    a, b = Run(10, 2 * 10**9, [1, 2]), Run(30, 3 * 10**9, [3])
    assert a.per_s == 5.0
    later = a.after(b)
    assert (later.completed, later.elapsed_ns, later.latencies_ns) == (40, 5 * 10**9, [1, 2, 3])
    together = Run.alongside([a, b])  # calls add up over the longer wall time
    assert (together.completed, together.elapsed_ns) == (40, 3 * 10**9)
    assert together.per_s == pytest.approx(40 / 3)
    assert Run().per_s == 0.0


async def test_closed_loop_counts_every_call_and_its_latency() -> None:
    run = await closed_loop(sleeping(5), concurrency=4, seconds=0.1)
    assert run.completed == len(run.latencies_ns) >= 4
    assert min(run.latencies_ns) >= 5 * MS
    assert run.elapsed_ns >= 100 * MS


async def test_closed_loop_pays_for_settle() -> None:
    settled: list[bool] = []

    async def settle() -> None:
        await asyncio.sleep(0.05)
        settled.append(True)

    run = await closed_loop(Load(sleeping(1).op, settle), concurrency=1, seconds=0.02)
    assert settled == [True]
    assert run.elapsed_ns >= 70 * MS  # the phase, then the settle


async def test_open_loop_measures_from_the_scheduled_arrival() -> None:
    # 10 arrivals 10 ms apart, one server taking 20 ms each: arrival k starts after the k
    # before it (20 ms each), so it waits at least 10 k ms past its schedule (queueing counts).
    run = await open_loop(sleeping(20), rate=100, seconds=0.1, concurrency=1)
    assert run.completed == 10
    for k, latency in enumerate(run.latencies_ns):
        assert latency >= (10 * k + 20) * MS


async def test_open_loop_with_enough_servers_runs_every_arrival() -> None:
    run = await open_loop(sleeping(1), rate=200, seconds=0.1, concurrency=8)
    assert run.completed == 20
    assert min(run.latencies_ns) >= 1 * MS


@pytest.mark.parametrize("rate", [0.0, -1.0, float("inf"), float("nan")])
async def test_open_loop_refuses_a_rate_that_is_not_a_positive_number(rate: float) -> None:
    with pytest.raises(ValueError, match="offered rate"):
        await open_loop(sleeping(1), rate=rate, seconds=0.1, concurrency=1)


async def test_measure_load_offers_the_fraction_of_each_saturation() -> None:
    group = InProcess({"fast": sleeping(2), "slow": sleeping(10)})
    plan = LoadPlan(saturate=0.1, offered=0.1, warmup=0.02, rounds=1, fraction=0.5)
    results = await measure_load(group, ["fast", "slow"], plan, concurrency=2)
    for result in results.values():
        assert result.offered_rate == pytest.approx(0.5 * result.saturation.per_s)
        assert result.offered.completed == max(1, int(result.offered_rate * 0.1))


async def test_measure_load_runs_every_round_of_both_phases() -> None:
    group = InProcess({"op": sleeping(2)})
    plan = LoadPlan(saturate=0.1, offered=0.1, warmup=0.02, rounds=2, fraction=0.5)
    result = (await measure_load(group, ["op"], plan, concurrency=2))["op"]
    assert result.saturation.elapsed_ns >= 100 * MS  # two rounds of 50 ms
    assert result.offered.completed >= 2  # at least one arrival in each round


async def test_worker_processes_run_each_phase_and_add_up() -> None:
    target = Target("sleep", "tests.benchmarks.test_load:sleeper", (5,))
    async with AsyncExitStack() as stack:
        group = await Processes.start(stack, [target], CONTEXT, processes=2)
        closed = await group.closed("sleep", 2, 0.1)
        assert closed.completed == len(closed.latencies_ns) >= 2 * 2
        opened = await group.open("sleep", 100.0, 0.1, 2)  # 50/s in each process
        assert opened.completed == 2 * 5
        assert min(opened.latencies_ns) >= 5 * MS


async def test_a_failing_worker_process_is_reported() -> None:
    target = Target("nothing", "tests.benchmarks.test_load:no_such_opener")
    async with AsyncExitStack() as stack:
        with pytest.raises(RuntimeError, match="no_such_opener"):
            await Processes.start(stack, [target], CONTEXT, processes=1)

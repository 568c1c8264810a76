"""Throughput under concurrency: the load driver of the ``load:`` rows (``bench_load.py``).

A :class:`Target` names an operation by the function that opens it (``"module:function"``, so
that a worker process can import it), which yields a :class:`Load`: the operation and, optionally,
a ``settle`` coroutine awaited after each phase inside its time (work the operation leaves to a
background task, such as moving queued audit entries into the tree, is then paid for).

Two ways to drive it:

- :func:`closed_loop`: ``concurrency`` coroutines each call the operation again as soon as it
  returns, for ``seconds``: the throughput at saturation (completed calls over the phase's wall
  time, ``settle`` included).
- :func:`open_loop`: arrivals on a fixed schedule (one every ``1 / rate`` seconds, from the
  phase's start), released by a ticker thread when due and served by ``concurrency`` coroutines,
  each taking the next arrival in turn; a latency is measured from the arrival's *scheduled*
  time, so the time an arrival waits for a free coroutine (or for the event loop) counts.

Where: :class:`InProcess` runs the targets on the current event loop; :class:`Processes` starts
``processes`` worker processes (``spawn``), each with its own event loop and its own instance of
every target (its own pool, caches, managers) on the same database, and runs each phase in all
of them at once (a start time a little ahead, on the wall clock): throughputs add up, latencies
are pooled. :func:`run_in`, which the rows use, always runs them in worker processes (one
process too). :func:`measure_load` runs a group of peers on either: saturation phases then open-loop
phases at ``fraction`` of each one's saturation, interleaved in ``rounds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import math
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

from benchmarks.harness import Operation, percentile

__all__ = [
    "Group",
    "InProcess",
    "Load",
    "LoadPlan",
    "LoadResult",
    "Processes",
    "Run",
    "Target",
    "TargetContext",
    "closed_loop",
    "cpus",
    "measure_load",
    "open_loop",
    "run_in",
]

#: Seconds between sending a phase to the worker processes and its start.
START_MARGIN = 0.05


def cpus() -> int:
    """The cores this process may run on (its affinity; ``os.cpu_count()`` where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """How long each phase runs: ``saturate`` and ``offered`` seconds per target (split into
    ``rounds``), after ``warmup`` seconds of untimed calls; ``fraction`` of the saturation rate is
    the open loop's offered rate."""

    saturate: float
    offered: float
    warmup: float
    rounds: int
    fraction: float = 0.8
    processes: int = field(default_factory=cpus)

    @classmethod
    def create(cls, *, quick: bool) -> LoadPlan:
        if quick:
            return cls(saturate=0.2, offered=0.2, warmup=0.05, rounds=1)
        return cls(saturate=2.0, offered=2.0, warmup=0.3, rounds=2)


@dataclass(slots=True)
class Run:
    """One phase's result: calls completed, the phase's wall time, each call's latency."""

    completed: int = 0
    elapsed_ns: int = 0
    latencies_ns: list[int] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return self.completed / (self.elapsed_ns / 1e9) if self.elapsed_ns else 0.0

    def after(self, other: Run) -> Run:
        """This run and ``other`` one after the other (rounds of one phase)."""
        return Run(
            self.completed + other.completed,
            self.elapsed_ns + other.elapsed_ns,
            self.latencies_ns + other.latencies_ns,
        )

    @staticmethod
    def alongside(runs: Sequence[Run]) -> Run:
        """Runs at the same time (one per process): calls add up over the longest wall time."""
        return Run(
            sum(r.completed for r in runs),
            max((r.elapsed_ns for r in runs), default=0),
            [ns for r in runs for ns in r.latencies_ns],
        )

    def percentile_us(self, q: float) -> float:
        return percentile(sorted(self.latencies_ns), q) / 1000


@dataclass(frozen=True, slots=True)
class Load:
    """An opened target: the operation, and what to await after a phase (inside its time)."""

    op: Operation
    settle: Operation | None = None


@dataclass(frozen=True, slots=True)
class TargetContext:
    """What every process gets to open targets with: the bench database as the application role
    (a URL with its password) and the ``Database`` pool's size."""

    database_url: str
    pool_size: int
    max_overflow: int


class Opener(Protocol):
    def __call__(self, context: TargetContext, *args: Any) -> AbstractAsyncContextManager[Load]: ...


@dataclass(frozen=True, slots=True)
class Target:
    """An operation of a row: ``opener`` is ``"module:function"``, called with the context and
    ``args`` (picklable) in every process that runs it; ``batch`` calls per operation."""

    name: str
    opener: str
    args: tuple[Any, ...] = ()
    batch: int = 1

    def open(self, context: TargetContext) -> AbstractAsyncContextManager[Load]:
        module, _, function = self.opener.partition(":")
        opener: Opener = getattr(importlib.import_module(module), function)
        return opener(context, *self.args)


def _wait_until(start_at: float | None) -> Awaitable[None]:
    delay = 0.0 if start_at is None else start_at - time.time()
    return asyncio.sleep(max(0.0, delay))


async def closed_loop(
    load: Load, concurrency: int, seconds: float, start_at: float | None = None
) -> Run:
    """``concurrency`` coroutines calling ``load.op`` back to back for ``seconds`` (calls started
    before the end all count, and so does ``load.settle``'s time)."""
    await _wait_until(start_at)
    clock = time.perf_counter_ns
    started = clock()
    deadline = started + int(seconds * 1e9)
    latencies: list[int] = []

    async def caller() -> None:
        while (before := clock()) < deadline:
            await load.op()
            latencies.append(clock() - before)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    if load.settle is not None:
        await load.settle()
    return Run(len(latencies), clock() - started, latencies)


async def open_loop(
    load: Load, rate: float, seconds: float, concurrency: int, start_at: float | None = None
) -> Run:
    """Arrivals every ``1 / rate`` s for ``seconds``, served by ``concurrency`` coroutines; each
    latency runs from the arrival's scheduled time to the end of its call.

    A ticker thread releases the arrivals when they are due (``time.sleep`` wakes within tens of
    microseconds, asyncio's timers only to the millisecond, which would leave the loop idle while
    arrivals are due); the coroutines take them in order from a queue.
    """
    if rate <= 0 or not math.isfinite(rate):
        raise ValueError(f"the offered rate must be a positive number, not {rate!r}")
    await _wait_until(start_at)
    loop = asyncio.get_running_loop()
    clock = time.perf_counter_ns
    interval = 1e9 / rate
    arrivals = max(1, int(rate * seconds))
    due: asyncio.Queue[int | None] = asyncio.Queue()
    latencies: list[int] = []
    stopped = threading.Event()
    started = clock()

    def release(slots: Sequence[int | None]) -> None:
        for slot in slots:
            due.put_nowait(slot)

    def ticker() -> None:
        i = 0
        with contextlib.suppress(RuntimeError):  # the loop closed (the phase failed)
            while i < arrivals and not stopped.is_set():
                if (wait := started + int(i * interval) - clock()) > 0:
                    time.sleep(wait / 1e9)
                now, first = clock(), i
                while i < arrivals and started + int(i * interval) <= now:
                    i += 1
                loop.call_soon_threadsafe(release, range(first, i))
            loop.call_soon_threadsafe(release, [None] * concurrency)

    async def server() -> None:
        while (i := await due.get()) is not None:
            await load.op()
            latencies.append(clock() - (started + int(i * interval)))

    thread = threading.Thread(target=ticker, name="load-ticker", daemon=True)
    thread.start()
    try:
        await asyncio.gather(*(server() for _ in range(concurrency)))
    finally:
        stopped.set()
        await asyncio.to_thread(thread.join)
    if load.settle is not None:
        await load.settle()
    return Run(len(latencies), clock() - started, latencies)


class Group(Protocol):
    """Where targets run: :class:`InProcess` or :class:`Processes`."""

    processes: int

    async def closed(self, name: str, concurrency: int, seconds: float) -> Run: ...

    async def open(self, name: str, rate: float, seconds: float, concurrency: int) -> Run: ...


class InProcess:
    """The targets opened on this event loop (one process)."""

    processes = 1

    def __init__(self, loads: dict[str, Load]) -> None:
        self.loads = loads

    @classmethod
    async def start(
        cls, stack: AsyncExitStack, targets: Sequence[Target], context: TargetContext
    ) -> InProcess:
        return cls({t.name: await stack.enter_async_context(t.open(context)) for t in targets})

    async def closed(self, name: str, concurrency: int, seconds: float) -> Run:
        return await closed_loop(self.loads[name], concurrency, seconds)

    async def open(self, name: str, rate: float, seconds: float, concurrency: int) -> Run:
        return await open_loop(self.loads[name], rate, seconds, concurrency)


def _worker(conn: Connection, targets: Sequence[Target], context: TargetContext) -> None:
    """A worker process: open the targets, then run the phases it is sent until ``stop``."""
    try:
        asyncio.run(_serve(conn, targets, context))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


async def _serve(conn: Connection, targets: Sequence[Target], context: TargetContext) -> None:
    async with AsyncExitStack() as stack:
        group = await InProcess.start(stack, targets, context)
        conn.send(("ready", None))
        while True:
            message = await asyncio.to_thread(conn.recv)
            if message[0] == "stop":
                break
            kind, name, args, start_at = message
            if kind == "closed":
                concurrency, seconds = args
                run = await closed_loop(group.loads[name], concurrency, seconds, start_at)
            else:
                rate, seconds, concurrency = args
                run = await open_loop(group.loads[name], rate, seconds, concurrency, start_at)
            conn.send(("run", run))
    conn.send(("stopped", None))


class Processes:
    """``processes`` worker processes, each with every target opened; a phase runs in all at
    once and their runs are combined (:meth:`Run.alongside`)."""

    def __init__(self, pipes: list[Connection], workers: list[Any]) -> None:
        self.pipes = pipes
        self.workers = workers
        self.processes = len(workers)

    @classmethod
    async def start(
        cls,
        stack: AsyncExitStack,
        targets: Sequence[Target],
        context: TargetContext,
        processes: int,
    ) -> Processes:
        spawn = multiprocessing.get_context("spawn")
        pipes, workers = [], []
        for _ in range(processes):
            parent, child = spawn.Pipe()
            worker = spawn.Process(target=_worker, args=(child, list(targets), context))
            worker.start()
            child.close()
            pipes.append(parent)
            workers.append(worker)
        group = cls(pipes, workers)
        stack.push_async_callback(group.stop)
        await group._gather("ready")
        return group

    async def _gather(self, expected: str) -> list[Any]:
        async def receive(pipe: Connection) -> Any:
            try:
                kind, payload = await asyncio.to_thread(pipe.recv)
            except EOFError:
                raise RuntimeError("a load worker process exited without a word") from None
            if kind == "error":
                raise RuntimeError(f"a load worker process failed:\n{payload}")
            if kind != expected:
                raise RuntimeError(f"a load worker process sent {kind!r}, not {expected!r}")
            return payload

        return list(await asyncio.gather(*(receive(pipe) for pipe in self.pipes)))

    async def _phase(self, kind: str, name: str, args: tuple[Any, ...]) -> Run:
        start_at = time.time() + START_MARGIN
        for pipe in self.pipes:
            pipe.send((kind, name, args, start_at))
        return Run.alongside(await self._gather("run"))

    async def closed(self, name: str, concurrency: int, seconds: float) -> Run:
        return await self._phase("closed", name, (concurrency, seconds))

    async def open(self, name: str, rate: float, seconds: float, concurrency: int) -> Run:
        return await self._phase("open", name, (rate / self.processes, seconds, concurrency))

    async def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):  # already gone (it failed and said so)
                pipe.send(("stop", None, None, None))
        for worker in self.workers:
            await asyncio.to_thread(worker.join, 30)
            if worker.is_alive():
                worker.kill()
        for pipe in self.pipes:
            pipe.close()


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A target's saturation run and its open-loop run at ``offered`` calls/s."""

    saturation: Run
    offered_rate: float
    offered: Run


async def measure_load(
    group: Group,
    names: Sequence[str],
    plan: LoadPlan,
    concurrency: int,
    fraction: float | None = None,
) -> dict[str, LoadResult]:
    """Saturate each of ``names`` (closed loop, ``concurrency`` coroutines per process), and
    offer each ``fraction`` (default: the plan's) of its saturation rate (open loop, as many
    coroutines), in ``plan.rounds`` rounds: each round saturates every name, then offers each
    the fraction of its saturation so far, so that the open loop follows the machine's drift.
    Peers alternate, starting from another each round; a short untimed closed loop warms each
    up first. The result's ``offered_rate`` is the mean rate offered over the rounds."""
    share = plan.fraction if fraction is None else fraction
    for name in names:
        await group.closed(name, concurrency, plan.warmup)
    saturation = {name: Run() for name in names}
    offered = {name: Run() for name in names}
    arrivals = dict.fromkeys(names, 0.0)
    for round_no in range(plan.rounds):
        order = _rotated(names, round_no)
        for name in order:
            run = await group.closed(name, concurrency, plan.saturate / plan.rounds)
            saturation[name] = saturation[name].after(run)
        for name in order:
            rate, seconds = share * saturation[name].per_s, plan.offered / plan.rounds
            offered[name] = offered[name].after(await group.open(name, rate, seconds, concurrency))
            arrivals[name] += rate * seconds
    return {
        name: LoadResult(saturation[name], arrivals[name] / plan.offered, offered[name])
        for name in names
    }


def _rotated(names: Sequence[str], round_no: int) -> list[str]:
    """``names`` starting from another one each round."""
    shift = round_no % len(names)
    return [*names[shift:], *names[:shift]]


async def run_in(
    targets: Sequence[Target],
    context: TargetContext,
    processes: int,
    body: Callable[[Group], Awaitable[Any]],
) -> Any:
    """Open ``targets`` in ``processes`` worker processes, run ``body`` on them, then close them.

    One process is a worker process too: a fresh interpreter, as a node of the service starts,
    rather than the benchmark process, whose heap holds what the modules before made (its
    garbage collections then cost more)."""
    async with AsyncExitStack() as stack:
        group = await Processes.start(stack, targets, context, processes)
        return await body(group)

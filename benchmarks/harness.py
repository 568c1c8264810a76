"""Measuring, comparing and reporting: what every benchmark module shares.

A module builds :class:`Case` objects (an async callable that performs one operation, and the name
of its peer, the operation it is compared with), and :func:`run_cases` turns them into
:class:`Row` objects. Latencies come from :func:`measure` (``time.perf_counter_ns`` around each
call); the peak memory from :func:`peak_memory_kib`, a separate short pass under ``tracemalloc``
so that tracing never slows the timed calls.

An operation too short to time alone (about a microsecond) is timed in batches: its ``run``
performs ``Case.batch`` calls, and the row reports per call (the batch's time divided by
``batch``, so p50 and p95 are percentiles of batch means). A figure that is not a latency (a hit
ratio) is a :class:`Metric`; :func:`run_metrics` turns it into a row with ``value`` and ``unit``
instead of latencies.

An operation that needs fresh state for every call (a session to revoke, a value some node has
cached) gives ``Case.prepare``: it runs, untimed and untraced, before each call of ``run``.
"""

from __future__ import annotations

import gc
import math
import re
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from benchmarks.environment import Environment

__all__ = [
    "Benchmark",
    "Case",
    "Metric",
    "Operation",
    "Plan",
    "Row",
    "Sample",
    "format_table",
    "measure",
    "peak_memory_kib",
    "percentile",
    "run_cases",
    "run_metrics",
    "select_cases",
    "warm_up",
]

Operation = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Plan:
    """How much to run: the same plan applies to every module.

    ``iterations``, ``warmup`` and ``memory_iterations`` are upper bounds per case; ``seconds`` is
    the time budget of a case's timed calls, which :func:`run_cases` turns into a number of
    iterations from the warm-up's timings (never fewer than ``min_iterations``). Fast operations
    thus run ``iterations`` times, slow ones as many times as fit in ``seconds``.
    """

    iterations: int
    warmup: int
    rounds: int
    memory_iterations: int
    only: re.Pattern[str] | None = None
    seconds: float = math.inf
    min_iterations: int = 1
    block: int = 20

    @classmethod
    def create(cls, *, quick: bool, only: str | None = None) -> Plan:
        pattern = re.compile(only, re.IGNORECASE) if only else None
        if quick:
            return cls(
                iterations=500,
                warmup=50,
                rounds=5,
                memory_iterations=20,
                only=pattern,
                seconds=0.1,
                min_iterations=10,
            )
        return cls(
            iterations=5000,
            warmup=200,
            rounds=10,
            memory_iterations=100,
            only=pattern,
            seconds=0.75,
            min_iterations=30,
        )

    def iterations_for(self, call_ns: float) -> int:
        """How many timed calls of ``call_ns`` each the case runs: as many as fit in ``seconds``,
        between ``min_iterations`` and ``iterations``."""
        if call_ns <= 0 or math.isinf(self.seconds):
            return self.iterations
        fit = int(self.seconds * 1e9 / call_ns)
        return min(self.iterations, max(self.min_iterations, fit))

    def capped(self, *, iterations: int, warmup: int, memory_iterations: int) -> Plan:
        """This plan with at most these iterations, warm-up and memory iterations (for slow
        operations)."""
        return replace(
            self,
            iterations=min(self.iterations, iterations),
            warmup=min(self.warmup, warmup),
            memory_iterations=min(self.memory_iterations, memory_iterations),
        )

    def wants(self, operation: str) -> bool:
        return self.only is None or self.only.search(operation) is not None

    def wants_any(self, operations: Iterable[str]) -> bool:
        return any(self.wants(name) for name in operations)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the report. ``ratio`` is this operation's p50 over its peer's p50.

    A metric row (``value`` set) has no latencies; its ratio is its value over its peer's.
    ``batch`` is the number of calls each timed sample made (latencies are per call).
    """

    operation: str
    p50_us: float | None
    p95_us: float | None
    ops_per_s: float | None
    peak_kib: float | None
    peer: str | None = None
    ratio: float | None = None
    iterations: int = 0
    module: str = ""
    batch: int = 1
    value: float | None = None
    unit: str | None = None
    #: Which PostgreSQL the row ran on (``embedded PostgreSQL 18.4``), set by ``__main__``.
    database: str = ""
    #: Load rows (``benchmarks/load.py``): ``value`` is the throughput at saturation, p50/p95
    #: and ops/s are those at ``offered_per_s`` (``load`` of it), with ``concurrency``
    #: coroutines in each of ``processes`` processes.
    offered_per_s: float | None = None
    load: float | None = None
    concurrency: int | None = None
    processes: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Case:
    """An operation to measure; ``peer`` names the case it is compared with (or none).

    ``run`` performs ``batch`` calls of the operation (1 unless the call is too short to time).
    ``prepare``, when given, runs before each call of ``run``, outside the timing and the memory
    peak; the row's ops/s then counts only the timed calls' time.
    """

    name: str
    run: Operation
    peer: str | None = None
    batch: int = 1
    prepare: Operation | None = None


@dataclass(frozen=True, slots=True)
class Metric:
    """A figure that is not a latency (a hit ratio): ``compute`` returns it, once.

    ``count`` is how many operations it summarizes (the ``iterations`` of its row).
    """

    name: str
    compute: Callable[[], float]
    unit: str
    peer: str | None = None
    count: int = 0


class _Comparable(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def peer(self) -> str | None: ...


_C = TypeVar("_C", bound=_Comparable)


@dataclass(slots=True)
class Sample:
    """Per-call latencies and the wall time of the loops that produced them."""

    latencies_ns: list[int] = field(default_factory=list)
    elapsed_ns: int = 0

    def extend(self, other: Sample) -> None:
        self.latencies_ns.extend(other.latencies_ns)
        self.elapsed_ns += other.elapsed_ns

    def percentile_us(self, q: float) -> float:
        return percentile(sorted(self.latencies_ns), q) / 1000

    @property
    def ops_per_s(self) -> float:
        return len(self.latencies_ns) / (self.elapsed_ns / 1e9) if self.elapsed_ns else 0.0


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A benchmark module: its operations' names (for ``--only``) and the coroutine that runs it.

    ``run`` receives only what ``--only`` selects to do; it does its own setup and returns its
    rows (usually from :func:`run_cases`).
    """

    name: str
    operations: tuple[str, ...]
    run: Callable[[Environment, Plan], Awaitable[list[Row]]]


def percentile(sorted_values: Sequence[int], q: float) -> float:
    """The nearest-rank percentile ``q`` (0-1) of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[rank - 1])


async def measure(
    run: Operation,
    iterations: int,
    warmup: int = 0,
    prepare: Operation | None = None,
    *,
    collect: bool = True,
) -> Sample:
    """Call ``run`` ``warmup`` times untimed, then ``iterations`` times timed, one at a time.

    With ``prepare``, each call of ``run`` follows an untimed ``await prepare()``, and the
    sample's elapsed time is the sum of the timed calls. ``collect``: a full garbage collection
    first (:func:`run_cases`, which measures in many small blocks, collects once per round of
    blocks instead: a collection costs more than a block of fast calls).
    """
    for _ in range(warmup):
        if prepare is not None:
            await prepare()
        await run()
    if collect:
        gc.collect()
    clock = time.perf_counter_ns
    latencies = [0] * iterations
    started = clock()
    for i in range(iterations):
        if prepare is not None:
            await prepare()
        before = clock()
        await run()
        latencies[i] = clock() - before
    elapsed = sum(latencies) if prepare is not None else clock() - started
    return Sample(latencies, elapsed)


async def peak_memory_kib(
    run: Operation,
    iterations: int,
    prepare: Operation | None = None,
    max_seconds: float = math.inf,
) -> float:
    """Peak of traced Python allocations above the starting level while ``run`` repeats, in KiB.

    With ``prepare`` (run before each call), the peak of each call above the level just before
    it, the largest of them: what ``prepare`` allocated is not counted. Stops after
    ``iterations`` calls or, after one call at least, once ``max_seconds`` have passed (tracing
    can slow a call tenfold and more).
    """
    gc.collect()
    deadline = time.perf_counter() + max_seconds
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        if prepare is None:
            for _ in range(iterations):
                await run()
                if time.perf_counter() > deadline:
                    break
            return max(0, tracemalloc.get_traced_memory()[1] - baseline) / 1024
        worst = 0
        for _ in range(iterations):
            await prepare()
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            await run()
            worst = max(worst, tracemalloc.get_traced_memory()[1] - before)
            if time.perf_counter() > deadline:
                break
        return worst / 1024
    finally:
        tracemalloc.stop()


def select_cases(cases: Sequence[_C], plan: Plan) -> list[_C]:
    """The cases ``--only`` matches, plus their peers, and theirs (a ratio needs both)."""
    chosen = {case.name for case in cases if plan.wants(case.name)}
    while True:
        peers = {case.peer for case in cases if case.name in chosen and case.peer} - chosen
        if not peers:
            return [case for case in cases if case.name in chosen]
        chosen |= peers


async def warm_up(case: Case, plan: Plan) -> float:
    """Run ``case`` up to ``plan.warmup`` times, stopping once a quarter of ``plan.seconds`` has
    passed (after two calls at least); return the median call in ns (none of it is reported)."""
    budget_ns = plan.seconds * 1e9 / 4
    clock = time.perf_counter_ns
    latencies: list[int] = []
    spent = 0
    while len(latencies) < plan.warmup and (len(latencies) < 2 or spent < budget_ns):
        if case.prepare is not None:
            await case.prepare()
        before = clock()
        await case.run()
        latencies.append(clock() - before)
        spent += latencies[-1]
    return percentile(sorted(latencies), 0.5) if latencies else 0.0


#: Rounds of blocks between two full garbage collections in :func:`run_cases`.
_COLLECT_EVERY = 25


async def run_cases(cases: Sequence[Case], plan: Plan, module: str) -> list[Row]:
    """Measure ``cases`` interleaved, then their memory, and return one row per case.

    Each case gets as many iterations as fit in ``plan.seconds`` (from its warm-up's median,
    see :meth:`Plan.iterations_for`). The iterations are split into rounds, at least
    ``plan.rounds`` and enough that no block is longer than ``plan.block`` calls; each round runs
    one block of every case (a case's calls spread evenly over the rounds), starting from a
    different case each round, so that a drift of the machine falls on all of them alike.
    """
    cases = select_cases(cases, plan)
    if not cases:
        return []
    samples = {case.name: Sample() for case in cases}
    call_ns = {case.name: await warm_up(case, plan) for case in cases}
    counts = {case.name: plan.iterations_for(call_ns[case.name]) for case in cases}
    rounds = max(plan.rounds, math.ceil(max(counts.values()) / plan.block))
    for round_no in range(rounds):
        if round_no % _COLLECT_EVERY == 0:
            gc.collect()
        shift = round_no % len(cases)
        for case in [*cases[shift:], *cases[:shift]]:
            count = counts[case.name]  # spread evenly over the rounds
            block = (round_no + 1) * count // rounds - round_no * count // rounds
            if block:
                sample = await measure(case.run, block, prepare=case.prepare, collect=False)
                samples[case.name].extend(sample)
    memory = {  # a tenth of the timed calls, within half the budget (tracing slows them)
        case.name: max(1, min(plan.memory_iterations, counts[case.name] // 10)) for case in cases
    }
    peaks = {
        case.name: await peak_memory_kib(
            case.run, memory[case.name], case.prepare, max_seconds=plan.seconds / 2
        )
        for case in cases
    }

    p50 = {case.name: samples[case.name].percentile_us(0.50) / case.batch for case in cases}
    peers = {case.peer for case in cases if case.peer}
    digits = {case.name: 3 if case.batch > 1 else 1 for case in cases}
    rows = []
    for case in cases:
        sample = samples[case.name]
        if case.peer is not None:
            ratio: float | None = p50[case.name] / p50[case.peer]
        else:
            ratio = 1.0 if case.name in peers else None
        rows.append(
            Row(
                operation=case.name,
                p50_us=round(p50[case.name], digits[case.name]),
                p95_us=round(sample.percentile_us(0.95) / case.batch, digits[case.name]),
                ops_per_s=round(sample.ops_per_s * case.batch, 1),
                peak_kib=round(peaks[case.name], 1),
                peer=case.peer,
                ratio=None if ratio is None else round(ratio, 3),
                iterations=len(sample.latencies_ns) * case.batch,
                module=module,
                batch=case.batch,
            )
        )
    return rows


def run_metrics(metrics: Sequence[Metric], plan: Plan, module: str) -> list[Row]:
    """Compute the metrics ``--only`` selects (plus their peers): one row each, by value."""
    metrics = select_cases(metrics, plan)
    values = {metric.name: metric.compute() for metric in metrics}
    peers = {metric.peer for metric in metrics if metric.peer}
    rows = []
    for metric in metrics:
        if metric.peer is not None:  # no ratio over a peer of zero (a recall of nothing)
            peer_value = values[metric.peer]
            ratio: float | None = values[metric.name] / peer_value if peer_value else None
        else:
            ratio = 1.0 if metric.name in peers else None
        rows.append(
            Row(
                operation=metric.name,
                p50_us=None,
                p95_us=None,
                ops_per_s=None,
                peak_kib=None,
                peer=metric.peer,
                ratio=None if ratio is None else round(ratio, 3),
                iterations=metric.count,
                module=module,
                value=round(values[metric.name], 4),
                unit=metric.unit,
            )
        )
    return rows


def _figure(value: float) -> str:
    """A metric's value: a ratio to four places, a rate in whole units with separators."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4f}"


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a plain-text table (a peer-less row that others compare with is a baseline).

    A ``value`` column appears when some row is a metric; sub-microsecond latencies (batched
    rows) get three decimals.
    """
    with_values = any(row.value is not None for row in rows)
    header: tuple[str, ...] = ("operation", "p50 (us)", "p95 (us)", "ops/s", "peak KiB")
    header += ("value", "peer", "ratio") if with_values else ("peer", "ratio")
    peers = {row.peer for row in rows if row.peer}
    lines = []
    for row in rows:
        us = ",.3f" if row.batch > 1 else ",.1f"
        cells: tuple[str, ...] = (
            row.operation,
            _cell(row.p50_us, us),
            _cell(row.p95_us, us),
            _cell(row.ops_per_s, ",.0f"),
            _cell(row.peak_kib, ",.1f"),
        )
        if with_values:
            value = "-" if row.value is None else f"{_figure(row.value)} {row.unit or ''}"
            cells += (value.rstrip(),)
        cells += (
            row.peer or ("(baseline)" if row.operation in peers else "-"),
            "-" if row.ratio is None else f"{row.ratio:.2f}x",
        )
        lines.append(cells)
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    left = {0, len(header) - 2}

    def render(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(w) if i in left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), rule, *(render(cells) for cells in lines)])

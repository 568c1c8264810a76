"""Load and faults, end to end (issue 18): mixed traffic of many tenants against ``tenantry serve``
while its backends are broken for real, one after the other.

The service runs with a PostgreSQL primary, a streaming read replica, a Redis and two
``tenantry worker`` processes of its own (``benchmarks/fault_stack.py``); the traffic
(``benchmarks/traffic.py``) runs throughout. First a phase without faults gives each route's
throughput and p50/p95 (the ``load+faults:`` rows). Then, while the traffic goes on, each fault in
turn: Redis stopped then started again, the primary restarted (``pg_ctl restart -m fast``), a
worker SIGKILLed (another started after), the replica stopped then started, and the replica's
replay paused (a lagging replica) then resumed. For each: the answers that were not 2xx during
the fault and after it, by status (503 with problem+json is the expected refusal; a 500 is a
bug), and the recovery of each route class: from the fault's end to the first success of a
request sent after it, with the same service process throughout (never restarted).

At the end every write answered 2xx is read back (``lost writes``), every saga must end, and no
answer may have carried another tenant's marker (``cross-tenant answers``). The details go to
``benchmarks/results/load_faults.json``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx

from benchmarks.environment import RESULTS_DIR, Environment
from benchmarks.fault_stack import Stack, open_stack, redis_binary
from benchmarks.harness import Benchmark, Metric, Plan, Row, percentile, run_metrics
from benchmarks.traffic import PROBES, Call, Traffic

__all__ = ["BENCHMARK", "FAULTS", "Fault", "FaultResult", "run_faults"]

PREFIX = "load+faults"


@dataclass(frozen=True)
class Fault:
    name: str
    begin: Callable[[Stack], Awaitable[Any]]
    end: Callable[[Stack], Awaitable[Any]]


def _thread(method: Callable[[Stack], Any]) -> Callable[[Stack], Awaitable[Any]]:
    async def run(stack: Stack) -> Any:
        return await asyncio.to_thread(method, stack)

    return run


async def _nothing(stack: Stack) -> None:
    return None


async def _resume(stack: Stack) -> None:
    await stack.resume_replay()
    await stack.replica_caught_up()


FAULTS: tuple[Fault, ...] = (
    Fault("Redis stopped", _thread(Stack.stop_redis), _thread(Stack.start_redis)),
    Fault("PostgreSQL restarted", _thread(Stack.restart_primary), _nothing),
    Fault("worker SIGKILLed", _thread(Stack.kill_worker), _thread(Stack.start_worker)),
    Fault("replica stopped", _thread(Stack.stop_replica), _thread(Stack.start_replica)),
    Fault("replica lagging", Stack.pause_replay, _resume),
)


@dataclass
class FaultResult:
    """What one fault did to the traffic: answers by status from its start to the end of its
    phase (``errors``, non-2xx only), and each route class's recovery in seconds from the fault's
    end (None: no success after it)."""

    name: str
    seconds: float
    calls: int
    errors: Counter[str]
    recovery: dict[str, float | None]
    stale: int = 0  # lists of sagas from the replica missing one acknowledged before

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fault_seconds": round(self.seconds, 2),
            "calls": self.calls,
            "stale_replica_reads": self.stale,
            "errors": dict(self.errors),
            "recovery_s": {k: v if v is None else round(v, 3) for k, v in self.recovery.items()},
        }


def status_label(call: Call) -> str:
    if call.status == 0:
        return f"no answer ({call.error})"
    if call.status == 503:
        return "503 problem+json" if call.problem else "503 other"
    return str(call.status)


def judge(name: str, calls: list[Call], began: float, ended: float, until: float) -> FaultResult:
    window = [c for c in calls if c.ended >= began and c.started < until]  # in flight too
    errors = Counter(status_label(c) for c in window if not 200 <= c.status < 300)
    recovery: dict[str, float | None] = {}
    for kind in PROBES:
        after = [
            c.ended
            for c in window
            if c.kind == kind and c.started >= ended and 200 <= c.status < 300
        ]
        recovery[kind] = min(after) - ended if after else None
    return FaultResult(name, ended - began, len(window), errors, recovery)


@dataclass(frozen=True)
class Sizes:
    tenants: int
    concurrency: int
    baseline: float
    before: float  # traffic before each fault
    during: float  # the fault's length (a restart: as long as it takes)
    after: float  # traffic after the fault's end


QUICK = Sizes(tenants=4, concurrency=4, baseline=2.0, before=0.5, during=1.5, after=2.5)
FULL = Sizes(tenants=40, concurrency=16, baseline=30.0, before=2.0, during=5.0, after=10.0)


@dataclass
class Outcome:
    sizes: Sizes
    baseline: list[Call]
    faults: list[FaultResult]
    lost: Counter[str]
    writes: int
    leaks: list[tuple[str, str]]
    service_restarted: bool
    errors_baseline: Counter[str]
    stale_baseline: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "sizes": self.sizes.__dict__,
            "faults": [f.to_json() for f in self.faults],
            "lost_writes": dict(self.lost),
            "acknowledged_writes": self.writes,
            "cross_tenant_answers": len(self.leaks),
            "leaks": self.leaks[:20],
            "service_restarted": self.service_restarted,
            "baseline_errors": dict(self.errors_baseline),
            "baseline_stale_replica_reads": self.stale_baseline,
            "routes": route_stats(self.baseline, self.sizes.baseline),
        }


def route_stats(calls: list[Call], seconds: float) -> dict[str, dict[str, float]]:
    by_route: dict[str, list[int]] = {}
    for c in calls:
        if 200 <= c.status < 300:
            by_route.setdefault(c.route, []).append(int((c.ended - c.started) * 1e9))
    stats = {}
    for route, latencies in sorted(by_route.items()):
        latencies.sort()
        stats[route] = {
            "calls": len(latencies),
            "per_s": round(len(latencies) / seconds, 1),
            "p50_ms": round(percentile(latencies, 0.5) / 1e6, 2),
            "p95_ms": round(percentile(latencies, 0.95) / 1e6, 2),
        }
    return stats


async def run_faults(
    sizes: Sizes, faults: tuple[Fault, ...] = FAULTS, *, workers: int = 2, replica: bool = True
) -> Outcome:
    """The whole scenario on a stack of its own: baseline, then each fault under traffic."""
    async with open_stack(workers=workers, replica=replica) as stack:
        auth = {"Authorization": f"Bearer {stack.token}"}
        limits = httpx.Limits(max_connections=sizes.concurrency * 2)
        async with httpx.AsyncClient(base_url=stack.url, timeout=30, limits=limits) as client:
            traffic = Traffic(client)
            await traffic.add_tenants(sizes.tenants, stack.token)
            await traffic.run(min(1.0, sizes.baseline / 4), sizes.concurrency)  # warm-up
            first = len(traffic.calls)
            started = time.perf_counter()
            await traffic.run(sizes.baseline, sizes.concurrency)
            baseline = traffic.calls[first:]
            seconds = time.perf_counter() - started
            stale = sum(s >= started for s in traffic.stale)
            results = []
            for fault in faults:
                stop = asyncio.Event()
                load = asyncio.create_task(traffic.run(1e9, sizes.concurrency, stop))
                await asyncio.sleep(sizes.before)
                began = time.perf_counter()
                await fault.begin(stack)
                await asyncio.sleep(sizes.during if fault.end is not _nothing else 0)
                await fault.end(stack)
                ended = time.perf_counter()
                await asyncio.gather(asyncio.sleep(sizes.after), traffic.probe(ended, 60.0))
                until = time.perf_counter()
                stop.set()
                await load
                result = judge(fault.name, traffic.calls, began, ended, until)
                result.stale = sum(began <= s < until for s in traffic.stale)
                results.append(result)
            await stack.replica_caught_up()
            lost = await traffic.verify()
            restarted = not stack.service_alive
            del auth
    errors = Counter(status_label(c) for c in baseline if not 200 <= c.status < 300)
    sizes = Sizes(**{**sizes.__dict__, "baseline": seconds})
    return Outcome(
        sizes, baseline, results, lost, traffic.writes, traffic.leaks, restarted, errors, stale
    )


def rows(outcome: Outcome, plan: Plan) -> list[Row]:
    found = []
    for route, s in route_stats(outcome.baseline, outcome.sizes.baseline).items():
        found.append(
            Row(
                operation=f"{PREFIX}: {route}",
                p50_us=s["p50_ms"] * 1000,
                p95_us=s["p95_ms"] * 1000,
                ops_per_s=s["per_s"],
                peak_kib=None,
                iterations=int(s["calls"]),
                module="bench_load_faults",
                concurrency=outcome.sizes.concurrency,
                processes=1,
            )
        )
    metrics = [
        Metric(
            f"{PREFIX}: lost writes",
            partial(float, sum(outcome.lost.values())),
            "writes",
            count=outcome.writes,
        ),
        Metric(
            f"{PREFIX}: cross-tenant answers",
            partial(float, len(outcome.leaks)),
            "answers",
            count=len(outcome.baseline),
        ),
    ]
    for f in outcome.faults:
        recovered = [v for v in f.recovery.values() if v is not None]
        figures = {
            "500 answers": (float(f.errors["500"]), "answers", f.calls),
            "5xx answers": (
                float(sum(n for k, n in f.errors.items() if k.startswith("5"))),
                "answers",
                f.calls,
            ),
            "slowest recovery": (max(recovered, default=math.nan), "s", len(recovered)),
            "stale replica reads": (float(f.stale), "answers", f.calls),
            "classes not recovered": (
                float(len(f.recovery) - len(recovered)),
                "classes",
                len(f.recovery),
            ),
        }
        metrics += [
            Metric(f"{PREFIX}: {f.name}: {what}", partial(float, value), unit, count=count)
            for what, (value, unit, count) in figures.items()
        ]
    return found + run_metrics(metrics, plan, "bench_load_faults")


def report(outcome: Outcome) -> None:
    data = outcome.to_json()
    data["load_average"] = [round(x, 2) for x in os.getloadavg()]
    path = RESULTS_DIR / "load_faults.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    for f in outcome.faults:
        print(
            f"  {f.name}: {f.calls} calls, errors {dict(f.errors)}, stale {f.stale}, recovery "
            f"{ {k: v if v is None else round(v, 2) for k, v in f.recovery.items()} }"
        )
    print(
        f"  lost writes {dict(outcome.lost)} of {outcome.writes}, cross-tenant answers "
        f"{len(outcome.leaks)}, service restarted: {outcome.service_restarted}"
    )


async def run(env: Environment, plan: Plan) -> list[Row]:
    if redis_binary() is None:
        print("load+faults skipped: no redis-server")
        return []
    outcome = await run_faults(QUICK if plan.iterations <= 500 else FULL)
    report(outcome)
    return rows(outcome, plan)


OPERATIONS = (f"{PREFIX}: lost writes", f"{PREFIX}: cross-tenant answers")
BENCHMARK = Benchmark("bench_load_faults", OPERATIONS, run)

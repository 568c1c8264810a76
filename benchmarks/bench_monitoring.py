"""Recording a metric: ``MonitoringManager.record_metric`` against prometheus-client in the same
run, no database in the timed path.

- ``record_metric`` rows: the documents' call as production makes it, awaited, with a tenant and
  two labels (``route``, ``status``), cycling over 10 tenants x 5 routes (50 series, all alive);
  and the synchronous ``record`` beneath it. What they do: check the value, find the series,
  append the value to its list for the slot (the sketch is built at flush, not here).
- peers: prometheus-client's labelled ``Counter.labels(tenant, route, status).inc()`` (the
  issue's peer: a count, less than we keep), and ``Histogram.labels(...).observe(value)`` with
  its default buckets (a distribution, as ours).
- ``flush``: draining and sketching 50,000 recorded values in 50 series, the work the collector
  does every 10 s, without the database write (reported per value).

Calls are timed in batches of ``BATCH`` and reported per call; the goal (the documents') is
200,000 a second in one process and p95 < 1 ms.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from tenantry.monitoring import MonitoringManager
from tenantry.monitoring.aggregate import Aggregator

__all__ = ["BENCHMARK"]

BATCH = 100
RECORD = "record_metric, tenant + 2 labels, awaited"
RECORD_SYNC = "MonitoringManager.record, tenant + 2 labels"
PROM_COUNTER = "prometheus-client Counter.labels(3).inc()"
PROM_HISTOGRAM = "prometheus-client Histogram.labels(3).observe()"
FLUSH = "flush: drain and sketch 50,000 values in 50 series, per value"
OPERATIONS = (RECORD, RECORD_SYNC, PROM_COUNTER, PROM_HISTOGRAM, FLUSH)

_SERIES = [
    (f"tenant-{t}", {"route": f"/route/{r}", "status": "200"}) for t in range(10) for r in range(5)
]


def batched(name: str, op: Callable[[], object], peer: str | None = None) -> Case:
    async def run() -> None:
        for _ in range(BATCH):
            op()

    return Case(name, run, peer=peer, batch=BATCH)


async def run(env: Environment, plan: Plan) -> list[Row]:
    monitor = MonitoringManager(env.db)  # never flushed here: the timed path has no I/O
    series = itertools.cycle(_SERIES)
    values = itertools.cycle([0.012, 0.018, 0.25, 0.004, 0.031])

    async def record_awaited() -> None:
        for _ in range(BATCH):
            tenant, tags = next(series)
            await monitor.record_metric("request_seconds", next(values), tags, tenant_id=tenant)

    def record_sync() -> None:
        tenant, tags = next(series)
        monitor.record("request_seconds", next(values), tags, tenant)

    registry = CollectorRegistry()
    labels = ("tenant", "route", "status")
    counter = Counter("requests", "requests", labels, registry=registry)
    histogram = Histogram("request_seconds", "latency", labels, registry=registry)

    def count() -> None:
        tenant, tags = next(series)
        counter.labels(tenant, tags["route"], tags["status"]).inc()

    def observe() -> None:
        tenant, tags = next(series)
        histogram.labels(tenant, tags["route"], tags["status"]).observe(next(values))

    clock = [0.0]
    aggregator = Aggregator(resolution=10, clock=lambda: clock[0])

    async def fill() -> None:
        clock[0] += 10
        for _ in range(1000):
            for tenant, tags in _SERIES:
                aggregator.record(tenant, "request_seconds", next(values), frozenset(tags.items()))
        clock[0] += 10

    async def flush() -> None:
        aggregator.drain()

    cases = [
        Case(RECORD, record_awaited, peer=PROM_HISTOGRAM, batch=BATCH),
        batched(RECORD_SYNC, record_sync, peer=PROM_HISTOGRAM),
        batched(PROM_COUNTER, count, peer=PROM_HISTOGRAM),
        batched(PROM_HISTOGRAM, observe),
        Case(FLUSH, flush, batch=50_000, prepare=fill),
    ]
    return await run_cases(cases, plan, module="monitoring")


BENCHMARK = Benchmark(name="monitoring", operations=OPERATIONS, run=run)

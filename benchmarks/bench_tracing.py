"""The cost of tenantry's tracing per manager call: off (the default), on and sampled, on and not
sampled, against the bare call, in the same run.

Every row awaits the same trivial coroutine (it returns a constant without suspending), so a
row's difference from the bare call is the tracing's own cost. Rows:

- bare: the coroutine, not decorated (baseline).
- off: the coroutine decorated with ``tenantry.tracing.traced``, no tracer in context (what every
  manager call pays with ``TENANTRY_TRACING=off``).
- transaction span, off: ``start_span`` + ``end_span`` around the call, no tracer (what every
  transaction pays when off).
- on, sampled: a tracer of an SDK provider with the service's processor (``BatchSpanProcessor``),
  to an exporter that drops the spans: the span's making, not its export over the network.
- on, not sampled: the same provider at sample ratio 0 (a request the service did not draw).

Calls are timed in batches of 100 (``Case.batch``); the rows report per call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from tenantry.tracing import end_span, reset_tracer, start_span, traced, use_tracer

__all__ = ["BENCHMARK"]

#: Calls per timed sample: a call takes about a microsecond, too short to time alone.
BATCH = 100

BARE = "tracing: bare call"
OFF = "tracing: traced, off (default)"
SPAN_OFF = "tracing: transaction span, off"
SAMPLED = "tracing: traced, on, sampled"
DROPPED = "tracing: traced, on, not sampled"


class _Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def work(tenant_id: str) -> int:
    return 1


traced_work = traced("bench.call")(work)


def _provider(sampler: Sampler) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}), sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(_Dropped()))
    return provider


def case(name: str, op: Callable[[], Awaitable[object]], peer: str | None = None) -> Case:
    async def run() -> None:
        for _ in range(BATCH):
            await op()

    return Case(name, run, peer=peer, batch=BATCH)


def with_tracer(provider: TracerProvider) -> Callable[[], Awaitable[object]]:
    tracer = provider.get_tracer("bench")

    async def op() -> None:
        token = use_tracer(tracer)  # per batch call: the contextvar set, as per request
        try:
            await traced_work("bench-tenant")
        finally:
            reset_tracer(token)

    return op


async def run(env: Environment, plan: Plan) -> list[Row]:
    sampled, dropped = _provider(ALWAYS_ON), _provider(ALWAYS_OFF)

    async def bare() -> None:
        await work("bench-tenant")

    async def off() -> None:
        await traced_work("bench-tenant")

    async def span_off() -> None:
        span = start_span("db.transaction", "bench-tenant")
        await work("bench-tenant")
        end_span(span)

    assert await traced_work("bench-tenant") == 1
    cases = [
        case(BARE, bare),
        case(OFF, off, peer=BARE),
        case(SPAN_OFF, span_off, peer=BARE),
        case(SAMPLED, with_tracer(sampled), peer=OFF),
        case(DROPPED, with_tracer(dropped), peer=OFF),
    ]
    try:
        return await run_cases(cases, plan, module="tracing")
    finally:
        sampled.shutdown()
        dropped.shutdown()


BENCHMARK = Benchmark(name="tracing", operations=(BARE, OFF, SPAN_OFF, SAMPLED, DROPPED), run=run)

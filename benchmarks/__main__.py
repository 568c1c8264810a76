"""``python -m benchmarks``: run every benchmark module, print the table, write the JSON."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import (
    bench_access,
    bench_ai,
    bench_alert_delivery,
    bench_alerts,
    bench_anomaly,
    bench_audit,
    bench_breaker,
    bench_cache,
    bench_cache_l1,
    bench_crypto,
    bench_encoder,
    bench_forecast,
    bench_http_noisy_tenant,
    bench_isolation,
    bench_load,
    bench_load_faults,
    bench_metadata,
    bench_metadata_relevance,
    bench_metadata_write,
    bench_monitoring,
    bench_noisy_tenant,
    bench_prefetch,
    bench_propagation,
    bench_quotas,
    bench_schema_validation,
    bench_sessions,
    bench_threats,
    bench_tracing,
    bench_workflows,
)
from benchmarks.environment import RESULTS_DIR, open_environment
from benchmarks.harness import Benchmark, Plan, Row, format_table

#: Every benchmark module, in report order. A new module adds its ``BENCHMARK`` here.
BENCHMARKS: tuple[Benchmark, ...] = (
    bench_isolation.BENCHMARK,
    bench_cache_l1.BENCHMARK,
    bench_cache.BENCHMARK,
    bench_propagation.BENCHMARK,
    bench_prefetch.BENCHMARK,
    bench_breaker.BENCHMARK,
    bench_quotas.BENCHMARK,
    bench_tracing.BENCHMARK,
    bench_schema_validation.BENCHMARK,
    bench_noisy_tenant.BENCHMARK,
    bench_http_noisy_tenant.BENCHMARK,
    bench_access.BENCHMARK,
    bench_sessions.BENCHMARK,
    bench_crypto.BENCHMARK,
    bench_encoder.BENCHMARK,
    bench_anomaly.BENCHMARK,
    bench_forecast.BENCHMARK,
    bench_threats.BENCHMARK,
    bench_audit.BENCHMARK,
    bench_metadata.BENCHMARK,
    bench_metadata_write.BENCHMARK,
    bench_metadata_relevance.BENCHMARK,
    bench_monitoring.BENCHMARK,
    bench_alert_delivery.BENCHMARK,
    bench_alerts.BENCHMARK,
    bench_workflows.BENCHMARK,
    bench_ai.BENCHMARK,
    bench_load.BENCHMARK,
    bench_load_faults.BENCHMARK,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="fewer iterations: a smoke test of a few seconds"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=RESULTS_DIR / "latest.json",
        metavar="PATH",
        help="where to write the rows as JSON (default: benchmarks/results/latest.json)",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        default=os.environ.get("TENANTRY_BENCH_DATABASE_URL") or None,
        help="server mode: admin URL of a PostgreSQL server (tenantry_bench is created on it); "
        "default: $TENANTRY_BENCH_DATABASE_URL, else the embedded PostgreSQL",
    )
    parser.add_argument(
        "--only",
        metavar="PATTERN",
        help="run only the operations this regular expression matches (case-insensitive), "
        "plus their peers",
    )
    return parser.parse_args(argv)


async def collect(
    args: argparse.Namespace, plan: Plan, chosen: Sequence[Benchmark]
) -> tuple[dict[str, Any], list[Row]]:
    """Run the chosen modules on a fresh bench database: (machine info, rows).

    The machine info adds the load average before and after, and each module's seconds; every
    row is labelled with the PostgreSQL it ran on."""
    rows: list[Row] = []
    async with open_environment(args.database_url) as env:
        machine = await env.machine_info()
        machine["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
        database = f"{machine['mode']} PostgreSQL {machine['postgres']}"
        seconds: dict[str, float] = {}
        for benchmark in chosen:
            started = time.perf_counter()
            found = await benchmark.run(env, plan)
            rows += [dataclasses.replace(row, database=database) for row in found]
            seconds[benchmark.name] = round(time.perf_counter() - started, 1)
            print(f"{benchmark.name}: {len(found)} rows in {seconds[benchmark.name]} s", flush=True)
        machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        machine["module_seconds"] = seconds
    return machine, rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan.create(quick=args.quick, only=args.only)
    chosen = [b for b in BENCHMARKS if plan.wants_any(b.operations)]
    if not chosen:
        print(f"no operation matches --only {args.only!r}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    machine, rows = asyncio.run(collect(args, plan, chosen))
    elapsed = time.perf_counter() - started

    print(
        f"tenantry benchmarks: {machine['mode']} PostgreSQL {machine['postgres']}, "
        f"Python {machine['python']}, {machine['cpu_count']} CPUs "
        f"({machine['cpus_usable']} usable), load average "
        f"{machine['load_average_before'][0]:.2f} -> {machine['load_average_after'][0]:.2f}, "
        f"up to {plan.iterations} iterations or {plan.seconds:g} s of calls per operation"
        f"{' (quick)' if args.quick else ''}"
    )
    print(format_table(rows))
    report: dict[str, Any] = {
        "machine": machine,
        "config": {
            "quick": args.quick,
            "iterations": plan.iterations,
            "warmup": plan.warmup,
            "rounds": plan.rounds,
            "block": plan.block,
            "memory_iterations": plan.memory_iterations,
            "seconds_per_operation": plan.seconds,
            "min_iterations": plan.min_iterations,
            "only": args.only,
            "seconds": round(elapsed, 1),
        },
        "rows": [row.to_json() for row in rows],
    }
    path: Path = args.json
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{len(rows)} rows in {elapsed:.1f} s; written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

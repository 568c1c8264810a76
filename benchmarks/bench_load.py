"""Throughput under concurrency (issue 13): the documents' operations at saturation, and their
latency at a fixed offered rate below it, in one process and in one process per core.

Each row drives one operation (``benchmarks/load_targets.py``) with :mod:`benchmarks.load`: a
closed loop of ``concurrency`` coroutines finds the throughput at saturation (the row's
``value``), then an open loop offers ``load`` of it (80 %; 50 % for the 8-caller rows, where 8
callers on 2 cores make latency mostly queueing) and gives p50/p95 from each arrival's scheduled
time. ``x N processes`` rows run the same in N worker processes at once (N: the cores this
process may use), each with its own pool, managers and caches on the bench database; their
throughputs add up, their latencies are pooled.

- ``create_session`` against raw asyncpg doing its INSERTs (the session row, its activity row and
  the queued audit entry) in one transaction each, through an asyncpg pool of the ``Database``'s
  size; 8 callers, and 32 coroutines per process. The ratio is the manager's sessions/s over raw
  asyncpg's (goal: at least 0.5 with 8 callers).
- ``session validate`` of cache misses (a new node per call: hash, two reads, caching), 32
  coroutines per process.
- ``session validate`` of L1 hits, ``cache get``/``cache set`` (``CacheManager``, L1 alone), both
  in batches (one arrival: ``VALIDATE_BATCH`` or ``CACHE_BATCH`` calls), and ``analyze_threats``
  on ``bench_threats``' window of 10,000 events. Their ``x N processes`` rows' peer is the
  one-process row: the ratio is how throughput scales with processes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from benchmarks import bench_threats
from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Plan, Row, select_cases
from benchmarks.load import (
    Group,
    LoadPlan,
    LoadResult,
    Target,
    TargetContext,
    cpus,
    measure_load,
    run_in,
)
from benchmarks.load_targets import CACHE_BATCH, VALIDATE_BATCH
from tenantry.access.manager import AccessControl
from tenantry.cache import CacheManager
from tenantry.sessions.manager import SessionManager
from tenantry.tenants import TenantRegistry

__all__ = ["BENCHMARK"]

PROCESSES = cpus()
SESSIONS, RAW_SESSIONS = "bench-load-sessions", "bench-load-raw"
THREATS, CACHE = "bench-load-threats", "bench-load-cache"
#: Coroutines per process driving the database operations at saturation (the pool has 10 + 5).
DB_CONCURRENCY = 32
#: Coroutines per process for the in-process operations (no I/O: a few are enough).
CPU_CONCURRENCY = 8
TOKEN_HOURS = 1.0
#: The ``Database``'s default overflow above ``postgres_pool_size`` (what the service runs with).
MAX_OVERFLOW = 5


def _name(what: str, concurrency: int, processes: int) -> str:
    coroutines = "callers" if concurrency == 8 and "create_session" in what else "coroutines"
    where = "1 process" if processes == 1 else f"x {processes} processes"
    return f"load: {what}, {concurrency} {coroutines}{',' if processes == 1 else ''} {where}"


@dataclass(frozen=True, slots=True)
class Spec:
    """A load row: its target, where and how hard it runs, its peer and unit."""

    name: str
    target: str
    processes: int
    concurrency: int
    fraction: float = 0.8
    peer: str | None = None
    unit: str = "calls/s"
    group: str = ""  # rows measured together, interleaved (peers)


CREATE, RAW = "create_session", "raw asyncpg, create_session's INSERTs"
VALIDATE = f"session validate, L1 hit (batches of {VALIDATE_BATCH})"
MISS = "session validate, cache miss (a new node per call)"
CACHE_GET = f"cache get, L1 hit, CacheManager (batches of {CACHE_BATCH})"
CACHE_SET = f"cache set, CacheManager (batches of {CACHE_BATCH})"
ANALYZE = "threats analyze_threats(), 10,000 events"


def _specs() -> list[Spec]:
    specs = [
        Spec(_name(CREATE, 8, 1), CREATE, 1, 8, 0.5, _name(RAW, 8, 1), "sessions/s", "c8"),
        Spec(_name(RAW, 8, 1), RAW, 1, 8, 0.5, None, "sessions/s", "c8"),
    ]
    multi = [1, PROCESSES] if PROCESSES > 1 else [1]
    for n in multi:
        c, together = DB_CONCURRENCY, f"c{DB_CONCURRENCY}x{n}"
        specs += [
            Spec(_name(CREATE, c, n), CREATE, n, c, 0.8, _name(RAW, c, n), "sessions/s", together),
            Spec(_name(RAW, c, n), RAW, n, c, 0.8, None, "sessions/s", together),
        ]
        for what, c in (
            (VALIDATE, CPU_CONCURRENCY),
            (MISS, DB_CONCURRENCY),
            (CACHE_GET, CPU_CONCURRENCY),
            (CACHE_SET, CPU_CONCURRENCY),
            (ANALYZE, CPU_CONCURRENCY),
        ):
            peer = None if n == 1 else _name(what, c, 1)
            specs.append(Spec(_name(what, c, n), what, n, c, peer=peer))
    return specs


SPECS = _specs()
OPERATIONS = tuple(spec.name for spec in SPECS)


async def _tokens(env: Environment, count: int) -> list[str]:
    """``count`` live sessions of ``count // 8`` users granted ``viewer``, 8 created at a time."""
    users = max(1, count // 8)
    access = AccessControl(env.db)
    for user in range(users):
        await access.grant(SESSIONS, f"reader-{user}", "viewer")
    manager = SessionManager(env.db, cache=CacheManager())
    made: list[str] = []
    try:
        for start in range(0, count, 8):
            made += [
                token
                for _, token in await asyncio.gather(
                    *(
                        manager.create_session(SESSIONS, f"reader-{n % users}")
                        for n in range(start, min(start + 8, count))
                    )
                )
            ]
    finally:
        await manager.cache.close()
    return made


async def _targets(env: Environment, chosen: Sequence[Spec], quick: bool) -> list[Target]:
    """Set up what the chosen rows need; their targets (each once)."""
    kinds = {spec.target for spec in chosen}
    registry = TenantRegistry(env.db)
    targets: list[Target] = []
    if kinds & {CREATE, RAW, VALIDATE, MISS}:
        await registry.create(SESSIONS, "Load bench")
    if CREATE in kinds:
        targets.append(Target(CREATE, "benchmarks.load_targets:session_create", (SESSIONS,)))
    if RAW in kinds:
        await registry.create(RAW_SESSIONS, "Load bench, raw asyncpg")
        targets.append(Target(RAW, "benchmarks.load_targets:raw_session_create", (RAW_SESSIONS,)))
    tokens = await _tokens(env, 128 if quick else 1024) if kinds & {VALIDATE, MISS} else []
    if VALIDATE in kinds:
        opener = "benchmarks.load_targets:session_validate"
        targets.append(Target(VALIDATE, opener, (tokens, TOKEN_HOURS), VALIDATE_BATCH))
    if MISS in kinds:
        opener = "benchmarks.load_targets:session_validate_miss"
        targets.append(Target(MISS, opener, (SESSIONS, tokens)))
    if CACHE_GET in kinds:
        targets.append(
            Target(CACHE_GET, "benchmarks.load_targets:cache_get", (CACHE,), CACHE_BATCH)
        )
    if CACHE_SET in kinds:
        targets.append(
            Target(CACHE_SET, "benchmarks.load_targets:cache_set", (CACHE,), CACHE_BATCH)
        )
    if ANALYZE in kinds:
        now = datetime.now(UTC).replace(microsecond=0)
        await bench_threats.fill(env, now, THREATS)
        window = bench_threats.WINDOW.total_seconds()
        opener = "benchmarks.load_targets:threat_analysis"
        targets.append(Target(ANALYZE, opener, (THREATS, now.isoformat(), window)))
    return targets


def _row(spec: Spec, result: LoadResult, batch: int) -> Row:
    offered = result.offered
    return Row(
        operation=spec.name,
        p50_us=round(offered.percentile_us(0.50), 1),
        p95_us=round(offered.percentile_us(0.95), 1),
        ops_per_s=round(offered.per_s * batch, 1),
        peak_kib=None,
        peer=spec.peer,
        iterations=offered.completed * batch,
        module="load",
        batch=batch,
        value=round(result.saturation.per_s * batch, 1),
        unit=spec.unit,
        offered_per_s=round(result.offered_rate * batch, 1),
        load=spec.fraction,
        concurrency=spec.concurrency,
        processes=spec.processes,
    )


async def _measure(
    group: Group, specs: Sequence[Spec], plan: LoadPlan, batch: dict[str, int]
) -> list[Row]:
    """The rows of ``specs`` on ``group``: each ``group`` of peers together, interleaved."""
    rows: list[Row] = []
    done: set[str] = set()
    for spec in specs:
        if spec.name in done:
            continue
        together = [s for s in specs if spec.group and s.group == spec.group] or [spec]
        results = await measure_load(
            group, [s.target for s in together], plan, spec.concurrency, spec.fraction
        )
        for s in together:
            rows.append(_row(s, results[s.target], batch[s.target]))
            done.add(s.name)
            print(f"[load] {s.name}: {rows[-1].value:,.0f} {s.unit} at saturation", flush=True)
    return rows


def _ratios(rows: list[Row]) -> list[Row]:
    """Each row's saturation throughput over its peer's (a peer itself: 1.0)."""
    value = {row.operation: row.value for row in rows}
    peers = {row.peer for row in rows if row.peer}
    out = []
    for row in rows:
        if row.peer is not None and value.get(row.peer):
            ratio: float | None = round((row.value or 0.0) / (value[row.peer] or 1.0), 3)
        else:
            ratio = 1.0 if row.operation in peers else None
        out.append(dataclasses.replace(row, ratio=ratio))
    return out


async def run(env: Environment, plan: Plan) -> list[Row]:
    chosen = select_cases(SPECS, plan)
    quick = plan.iterations < 1000
    load_plan = LoadPlan.create(quick=quick)
    targets = await _targets(env, chosen, quick)
    batch = {t.name: t.batch for t in targets}
    context = TargetContext(
        env.db.url.render_as_string(hide_password=False),
        env.runtime.settings.postgres_pool_size,
        max_overflow=MAX_OVERFLOW,
    )
    rows: list[Row] = []
    for processes in sorted({spec.processes for spec in chosen}):
        specs = [spec for spec in chosen if spec.processes == processes]
        needed = {spec.target for spec in specs}
        mine = [t for t in targets if t.name in needed]

        async def body(group: Group, specs: list[Spec] = specs) -> list[Row]:
            return await _measure(group, specs, load_plan, batch)

        rows += await run_in(mine, context, processes, body)
    order = {spec.name: i for i, spec in enumerate(SPECS)}
    return _ratios(sorted(rows, key=lambda row: order[row.operation]))


BENCHMARK = Benchmark(name="load", operations=OPERATIONS, run=run)

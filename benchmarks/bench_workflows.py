"""Durable workflows (:mod:`tenantry.workflows`): fairness under a burst, and reliability counts.

**Fairness under a burst.** Tenant A (``enterprise``, cap 16) has a burst of 10,000 sagas
(``--quick``: 600) of a one-step definition whose step sleeps 10 ms (not transactional: the
database is not the bottleneck). The first :data:`ONE_BY_ONE` are made with ``create_workflow``
one by one (their rate, the mean of the three runs, is a row); the rest are written in chunks
of :data:`CHUNK` by :func:`insert_burst`, which does in one tenant transaction what
``create_workflow`` does for one saga (the tenant must be active, the open-saga limit, the same
row, a ``workflow.created`` audit entry per saga). One ``WorkflowWorker`` (concurrency 32,
``tenants=[A, B]`` so no other benchmark's data is touched) starts on the burst; once it holds
16 sagas, tenant B (also ``enterprise``) creates one saga of the same definition every
:data:`GAP` seconds, :data:`SAMPLES` times (``--quick``: 6). Each of B's sagas is timed with
the database's clock: from its row's ``created_at`` to its step's ``started_at`` (start delay)
and to its ``finished_at``. The worker is not woken by B's creation (as for a worker in another
process); it claims when one of its sagas ends or at its poll (0.5 s).

A second run (tenants of its own) gives A and B a cap of 32, the worker's concurrency: A's burst
can take every slot, so B's saga waits for one of A's to end (the docs' "one saga's step, when
every slot is busy"), and A's throughput is not held by its cap (the fair claim's own cost is
what is left against the peer).

The peer runs the same (fresh tenants, the same burst and schedule) with :class:`FifoWorker`:
the same worker with a plain FIFO claim across its two tenants, oldest ``next_run_at`` then
``created_at`` first, no tier cap and no fairness. A's throughput in each run is its sagas over
the span from its first step's start to its last saga's end.

**Reliability counts.** The two scenarios of ``tests/workflows/test_reliability.py``, imported
from ``tests/workflows/scenarios.py`` (as other benchmarks import test data): ``effects.counted``
sagas (a step with an idempotency key, four transactional steps that each write an effect row,
every fourth saga failing its last step and compensated) on two ``tenantry worker`` processes of
which one is SIGKILLed mid-steps, and on one worker whose embedded PostgreSQL (in a temporary
directory) is restarted under it. :data:`RELIABILITY_SAGAS` sagas each (``--quick``: 16). The
rows count completed and compensated sagas, effects written twice, step attempts against
effects written, and the seconds from the fault to every saga finished.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Metric, Plan, Row, percentile, run_metrics
from tenantry.context import tenant_scope
from tenantry.db.changes import change_log_for
from tenantry.db.engine import Database
from tenantry.errors import Conflict, TenantNotActive
from tenantry.tenants import TenantRegistry
from tenantry.workflows import (
    Step,
    StepContext,
    WorkflowDefinition,
    WorkflowManager,
    WorkflowRegistry,
    WorkflowWorker,
)
from tenantry.workflows.manager import MAX_OPEN_WORKFLOWS
from tenantry.workflows.worker import Held
from tests.workflows.scenarios import Outcome, kill_scenario, restart_scenario

__all__ = ["BENCHMARK", "FifoWorker", "insert_burst"]

BURST, QUICK_BURST = 10_000, 600
SAMPLES, QUICK_SAMPLES = 20, 6
GAP: Final = 0.5
STEP_MS: Final = 10
CAP: Final = 16
CONCURRENCY: Final = 32
ONE_BY_ONE: Final = 200
CHUNK: Final = 2_000
RELIABILITY_SAGAS, QUICK_RELIABILITY_SAGAS = 40, 16

FAIR, FULL, FIFO = "fair claims", "fair claims, cap 32", "FIFO claims"
MODES: Final = (FAIR, FULL, FIFO)


def b_start(mode: str) -> str:
    return f"workflows burst: B's saga, creation to step start, {mode}"


def b_done(mode: str) -> str:
    return f"workflows burst: B's saga, creation to completion, {mode}"


def a_rate(mode: str) -> str:
    return f"workflows burst: A's throughput, {mode}"


CREATE_RATE = "workflows: create_workflow one by one"
BURST_OPS = (
    *(f(m) for m in MODES for f in (b_start, b_done, a_rate)),
    CREATE_RATE,
)
KILL, RESTART = "workflows SIGKILL of a worker", "workflows PostgreSQL restart"
FIGURES = (
    "sagas completed",
    "sagas compensated",
    "effects written twice",
    "step attempts",
    "effects written",
    "recovery seconds",
)


def reliability_ops(scenario: str) -> tuple[str, ...]:
    extra = ("restart seconds",) if scenario == RESTART else ()
    return tuple(f"{scenario}: {figure}" for figure in (*FIGURES, *extra))


OPERATIONS = (*BURST_OPS, *reliability_ops(KILL), *reliability_ops(RESTART))


async def _sleep(ctx: StepContext) -> dict[str, Any]:
    ms = float(ctx.input.get("ms", STEP_MS))
    await asyncio.sleep(ms / 1000)
    return {"slept_ms": ms}


SHORT = WorkflowDefinition("bench.short", (Step("work", _sleep, timeout=30),))


# -- the burst -----------------------------------------------------------------------------------


async def insert_burst(db: Database, tenant: str, count: int) -> None:
    """``count`` pending sagas of :data:`SHORT` for ``tenant`` in one tenant transaction: what
    ``create_workflow`` checks and writes for one (active tenant, open-saga limit, the row, its
    ``workflow.created`` audit entry), for many at once."""
    trail = change_log_for(db)
    await trail.prepare(tenant)
    ids = [uuid.uuid4() for _ in range(count)]
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            status = await conn.scalar(
                text("SELECT status FROM tenantry.tenants WHERE id = :t"), {"t": tenant}
            )
            if status != "active":
                raise TenantNotActive(f"tenant {tenant!r} is {status}: no workflow starts")
            open_now = await conn.scalar(
                text(
                    "SELECT count(*) FROM tenantry.workflows WHERE status IN "
                    "('pending', 'running', 'compensating', 'parked')"
                )
            )
            if int(open_now or 0) + count > MAX_OPEN_WORKFLOWS:
                raise Conflict(f"a tenant has at most {MAX_OPEN_WORKFLOWS:,} workflows")
            await conn.execute(
                text(
                    "INSERT INTO tenantry.workflows (tenant_id, id, definition, input, "
                    "compensation_strategy, created_by) SELECT :t, i, :d, CAST(:input AS jsonb), "
                    "'automatic', 'bench' FROM unnest(CAST(:ids AS uuid[])) AS i"
                ),
                {"t": tenant, "d": SHORT.name, "input": f'{{"ms":{STEP_MS}}}', "ids": ids},
            )
            for wid in ids:
                await trail.record(
                    tenant, "workflow.created", f"workflow:{wid}", actor="bench",
                    detail={"definition": SHORT.name, "strategy": "automatic"},
                )  # fmt: skip


class FifoWorker(WorkflowWorker):
    """The peer: a :class:`WorkflowWorker` whose claim is plain FIFO across its tenants (oldest
    ``next_run_at``, then ``created_at``), with no tier cap and no fairness.

    A measuring stick only: it claims on the admin connection (``env.runtime.admin_url``, which
    row-level security does not restrict), selecting the due sagas of its ``tenants`` across
    tenants with ``FOR UPDATE SKIP LOCKED`` and leasing them in one statement. Everything else
    (the engine, as each saga's tenant; heartbeats; releases) is the worker's own.
    """

    def __init__(self, admin: AsyncEngine, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.admin = admin

    async def _lease(self, room: int) -> list[Held]:
        async with self.admin.begin() as conn:
            rows = await conn.execute(
                text(
                    "UPDATE tenantry.workflows w SET lease_owner = :w, lease_expires_at = "
                    "clock_timestamp() + make_interval(secs => :l), status = CASE WHEN "
                    "w.status = 'pending' THEN 'running' ELSE w.status END, updated_at = "
                    "clock_timestamp() FROM (SELECT tenant_id, id FROM tenantry.workflows WHERE "
                    "tenant_id = ANY(:only) AND status IN ('pending', 'running', 'compensating') "
                    "AND next_run_at <= clock_timestamp() AND (lease_expires_at IS NULL OR "
                    "lease_expires_at <= clock_timestamp()) ORDER BY next_run_at, created_at "
                    "LIMIT :n FOR UPDATE SKIP LOCKED) due WHERE w.tenant_id = due.tenant_id "
                    "AND w.id = due.id RETURNING w.tenant_id, w.id"
                ),
                {"w": self.name, "l": self.lease, "only": list(self.tenants or ()), "n": room},
            )
            return [(str(t), w) for t, w in rows]


@dataclass(frozen=True, slots=True)
class BurstRun:
    starts: list[float]  # B's sagas: creation to step start (s)
    dones: list[float]  # creation to completion (s)
    a_sagas: int
    a_seconds: float  # A's first step start to its last saga's end

    @property
    def throughput(self) -> float:
        return self.a_sagas / self.a_seconds if self.a_seconds else math.nan


async def _open(db: Database, tenant: str) -> int:
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            found = await conn.scalar(
                text("SELECT count(*) FROM tenantry.workflows WHERE finished_at IS NULL")
            )
            return int(found or 0)


async def _timings(db: Database, tenant: str) -> list[tuple[float, float, float]]:
    """Each saga of ``tenant``: (created, its step started, finished) as epoch seconds."""
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            rows = await conn.execute(
                text(
                    "SELECT extract(epoch FROM w.created_at), extract(epoch FROM s.started_at), "
                    "extract(epoch FROM w.finished_at) FROM tenantry.workflows w JOIN "
                    "tenantry.workflow_steps s ON s.workflow_id = w.id AND s.phase = 'forward' "
                    "AND s.position = 0 WHERE w.status = 'completed'"
                )
            )
            return [(float(c), float(s), float(f)) for c, s, f in rows]


async def burst_run(
    env: Environment,
    make_worker: Callable[[WorkflowRegistry, Sequence[str]], WorkflowWorker],
    a: str,
    b: str,
    *,
    burst: int,
    samples: int,
) -> tuple[BurstRun, float]:
    """One run (see the module docstring): its figures, and ``create_workflow``'s rate."""
    tenants = TenantRegistry(env.db)
    for tenant in (a, b):
        await tenants.create(tenant, f"Workflows bench {tenant}", tier="enterprise")
    registry = WorkflowRegistry([SHORT])
    manager = WorkflowManager(env.db, registry=registry)
    started = time.perf_counter()
    for _ in range(ONE_BY_ONE):
        await manager.create_workflow(a, SHORT.name, {"ms": STEP_MS})
    create_rate = ONE_BY_ONE / (time.perf_counter() - started)
    left = burst - ONE_BY_ONE
    while left > 0:
        await insert_burst(env.db, a, min(CHUNK, left))
        left -= CHUNK
    worker = make_worker(registry, (a, b))
    await worker.start()
    try:
        async with asyncio.timeout(60):
            while True:  # until A's burst is running
                if len(worker.held) >= CAP:
                    break
                await asyncio.sleep(0.01)
        for _ in range(samples):
            await manager.create_workflow(b, SHORT.name, {"ms": STEP_MS})
            await asyncio.sleep(GAP)
        async with asyncio.timeout(max(120, burst / 5)):
            while True:
                if await _open(env.db, a) + await _open(env.db, b) == 0:
                    break
                await asyncio.sleep(0.25)
    finally:
        await worker.close()
    mine, theirs = await _timings(env.db, b), await _timings(env.db, a)
    assert len(mine) == samples, len(mine)
    assert len(theirs) == burst, len(theirs)
    first = min(s for _, s, _ in theirs)
    last = max(f for _, _, f in theirs)
    run = BurstRun(
        starts=[s - c for c, s, _ in mine],
        dones=[f - c for c, _, f in mine],
        a_sagas=burst,
        a_seconds=last - first,
    )
    return run, create_rate


def _latency_row(name: str, seconds: list[float], peer: str | None, peer_p50: float) -> Row:
    us = sorted(round(s * 1e6) for s in seconds)
    p50 = percentile(us, 0.5)
    return Row(
        operation=name,
        p50_us=round(p50, 1),
        p95_us=round(percentile(us, 0.95), 1),
        ops_per_s=None,
        peak_kib=None,
        peer=peer,
        ratio=round(p50 / peer_p50, 3) if peer is not None and peer_p50 else None,
        iterations=len(us),
        module="workflows",
    )


async def burst_rows(env: Environment, plan: Plan) -> list[Row]:
    quick = plan.iterations < 1000
    burst, samples = (QUICK_BURST, QUICK_SAMPLES) if quick else (BURST, SAMPLES)

    def fair(cap: int) -> Callable[[WorkflowRegistry, Sequence[str]], WorkflowWorker]:
        def make(registry: WorkflowRegistry, tenants: Sequence[str]) -> WorkflowWorker:
            caps = {"enterprise": cap}
            return WorkflowWorker(
                env.db, registry, concurrency=CONCURRENCY, caps=caps, tenants=tenants
            )

        return make

    admin = create_async_engine(env.admin_url, pool_size=2)

    def fifo(registry: WorkflowRegistry, tenants: Sequence[str]) -> WorkflowWorker:
        return FifoWorker(admin, env.db, registry, concurrency=CONCURRENCY, tenants=tenants)

    makers = {FAIR: fair(CAP), FULL: fair(CONCURRENCY), FIFO: fifo}
    suffixes = {FAIR: "", FULL: "-32", FIFO: "-fifo"}
    runs: dict[str, BurstRun] = {}
    rates: list[float] = []
    try:
        for mode in MODES:
            a, b = f"bench-wf-burst{suffixes[mode]}", f"bench-wf-first{suffixes[mode]}"
            runs[mode], rate = await burst_run(
                env, makers[mode], a, b, burst=burst, samples=samples
            )
            rates.append(rate)
    finally:
        await admin.dispose()
    fifo_start = percentile(sorted(round(s * 1e6) for s in runs[FIFO].starts), 0.5)
    fifo_done = percentile(sorted(round(s * 1e6) for s in runs[FIFO].dones), 0.5)
    rows = []
    for mode in MODES:
        peer = None if mode == FIFO else FIFO
        rows += [
            _latency_row(b_start(mode), runs[mode].starts, peer and b_start(peer), fifo_start),
            _latency_row(b_done(mode), runs[mode].dones, peer and b_done(peer), fifo_done),
        ]
    metrics = [
        *(
            Metric(a_rate(mode), lambda r=runs[mode]: r.throughput, "sagas/s",
                   None if mode == FIFO else a_rate(FIFO), burst)
            for mode in MODES
        ),
        Metric(CREATE_RATE, lambda: sum(rates) / len(rates), "sagas/s", count=ONE_BY_ONE),
    ]  # fmt: skip
    return rows + run_metrics(metrics, Plan.create(quick=quick), module="workflows")


# -- reliability ---------------------------------------------------------------------------------


def _reliability_metrics(scenario: str, outcome: Outcome, sagas: int) -> list[Metric]:
    name = dict(zip(FIGURES, reliability_ops(scenario), strict=False))
    effects = sum(outcome.effects.values())
    found = [
        Metric(name["sagas completed"], lambda: outcome.statuses["completed"], "sagas",
               count=sagas),
        Metric(name["sagas compensated"], lambda: outcome.statuses["compensated"], "sagas",
               count=sagas),
        Metric(name["effects written twice"], lambda: outcome.duplicates, "effects", count=sagas),
        Metric(name["step attempts"], lambda: outcome.attempts, "attempts",
               name["effects written"], count=sagas),
        Metric(name["effects written"], lambda: effects, "effects", count=sagas),
        Metric(name["recovery seconds"], lambda: outcome.recovery, "s", count=sagas),
    ]  # fmt: skip
    if scenario == RESTART:
        found.append(Metric(f"{scenario}: restart seconds", lambda: outcome.fault, "s", count=1))
    return found


async def reliability_rows(env: Environment, plan: Plan, scenario: str) -> list[Row]:
    quick = plan.iterations < 1000
    sagas = QUICK_RELIABILITY_SAGAS if quick else RELIABILITY_SAGAS
    if scenario == KILL:
        tenant = "bench-wf-crash"
        await TenantRegistry(env.db).create(tenant, "Workflows bench crash", tier="enterprise")
        outcome = await kill_scenario(env.runtime.settings, env.db, tenant, sagas)
    else:
        with tempfile.TemporaryDirectory(prefix="tenantry-wf-restart-") as folder:
            outcome = await restart_scenario(Path(folder), sagas)
    metrics = _reliability_metrics(scenario, outcome, sagas)
    return run_metrics(metrics, Plan.create(quick=quick), module="workflows")


async def run(env: Environment, plan: Plan) -> list[Row]:
    rows: list[Row] = []
    if plan.wants_any(BURST_OPS):
        rows += await burst_rows(env, plan)
    for scenario in (KILL, RESTART):
        if plan.wants_any(reliability_ops(scenario)):
            rows += await reliability_rows(env, plan, scenario)
    return rows


BENCHMARK = Benchmark(name="workflows", operations=OPERATIONS, run=run)

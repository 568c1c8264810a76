"""The performance manager on the real database: samples in the series, bottlenecks found when
the loop is blocked, the pool held and one tenant holds most of it, trends of recorded series,
and optimization rounds kept or rolled back, recorded and audited."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tenantry.audit.trail import trail_for
from tenantry.cache import CacheManager
from tenantry.config import Settings
from tenantry.connections import ConnectionManager
from tenantry.connections.pools import PoolLimits
from tenantry.context import PLATFORM_TENANT, tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput
from tenantry.monitoring import MonitoringManager
from tenantry.monitoring.aggregate import Aggregator
from tenantry.performance import (
    Measurement,
    OptimizationStrategy,
    PerformanceManager,
    Thresholds,
)
from tests.conftest import NewTenant

NOW_WINDOW = timedelta(minutes=5)
QUICK = Thresholds(pool_for=0, tenant_for=0, loop_lag_p99=0.1)


def around_now() -> dict[str, datetime]:
    now = datetime.now(UTC)
    return {"start": now - NOW_WINDOW, "end": now + NOW_WINDOW}


@pytest.fixture
async def connections(settings: Settings, db: Database) -> AsyncIterator[ConnectionManager]:
    """A connection manager of its own on the worker's database: a gate of 4 connections, and
    a tenant allowed all of them (so that one can hog the pool)."""
    manager = ConnectionManager(
        settings,
        primary=db,
        pool_limits=PoolLimits(min_size=4, max_size=4),
        tenant_share=1.0,
        bulkhead_timeout=5.0,
        health_interval=0,
    )
    await manager.start()
    yield manager
    await manager.close()


async def test_a_sample_writes_the_process_and_pool_series(
    db: Database, settings: Settings
) -> None:
    monitoring = MonitoringManager(db)
    performance = PerformanceManager(db, monitoring=monitoring, settings=settings)
    await performance.initialize()
    performance.requests.observe(0.02, 200)
    performance.requests.observe(0.5, 503)
    performance.sampler.sample()  # the first one starts the request interval
    performance.requests.observe(0.04, 200)
    performance.requests.observe(0.3, 500)
    await asyncio.sleep(0.15)  # CPU shares are measured over a tenth of a second at least
    performance.sampler.sample()
    await monitoring.flush(everything=True)
    for name in ("process_cpu_percent", "process_rss_bytes", "host_memory_percent",
                 "db_pool_in_use_ratio", "requests_per_second"):  # fmt: skip
        series = await monitoring.query(PLATFORM_TENANT, name, step=600, **around_now())
        assert series.points, name
    rss = await monitoring.query(PLATFORM_TENANT, "process_rss_bytes", step=600, **around_now())
    assert rss.points[0].value > 10_000_000  # a Python process with SQLAlchemy: > 10 MB
    errors = await monitoring.query(
        PLATFORM_TENANT, "request_error_ratio", step=600, aggregation="max", **around_now()
    )
    assert errors.points[-1].value >= 0.5  # one 5xx of two in the last interval


async def test_a_blocked_event_loop_is_a_bottleneck_and_raises_the_series(
    db: Database, settings: Settings
) -> None:
    monitoring = MonitoringManager(db)
    performance = PerformanceManager(db, monitoring=monitoring, settings=settings, thresholds=QUICK)
    await performance.start_monitoring()
    try:
        await asyncio.sleep(0.6)
        assert not [b for b in await performance.detect() if b.kind == "loop_blocked"]
        time.sleep(1.2)  # noqa: ASYNC251 - the point: the loop is blocked (past its 0.5 s wake-up)
        await asyncio.sleep(0.6)  # the lag task wakes late, and measures it
        found = [b for b in await performance.detect() if b.kind == "loop_blocked"]
    finally:
        await performance.close()
    assert len(found) == 1
    assert found[0].evidence.startswith("event loop blocked: lag p99 ")
    lag_ms = int(found[0].evidence.split("lag p99 ")[1].split(" ms")[0])
    assert 650 <= lag_ms <= 2000
    await monitoring.flush(everything=True)
    raised = await monitoring.query(
        PLATFORM_TENANT, "bottleneck", step=600, aggregation="max",
        labels={"kind": "loop_blocked"}, **around_now(),
    )  # fmt: skip
    assert [p.value for p in raised.points] == [1.0]


async def hold(
    connections: ConnectionManager,
    tenant: str,
    release: asyncio.Event,
    entered: asyncio.Queue[None] | None = None,
) -> None:
    """A transaction of ``tenant`` held open until ``release`` (``entered`` told once open)."""
    with tenant_scope(tenant):
        async with connections.route(scoped=True, read=False, prologue=None) as conn:
            await conn.execute(text("select 1"))
            if entered is not None:
                entered.put_nowait(None)
            await release.wait()


async def opened(entered: asyncio.Queue[None], count: int) -> None:
    async with asyncio.timeout(10):
        for _ in range(count):
            await entered.get()


async def test_a_held_pool_and_a_hogging_tenant_are_bottlenecks(
    db: Database, settings: Settings, connections: ConnectionManager, new_tenant: NewTenant
) -> None:
    hog, quiet = (await new_tenant("hog")).id, (await new_tenant("quiet")).id
    monitoring = MonitoringManager(db)
    performance = PerformanceManager(
        db, monitoring=monitoring, connections=connections, settings=settings, thresholds=QUICK
    )
    await performance.initialize()
    performance.sampler.sample()
    assert not await performance.detect()  # an idle pool

    release, entered = asyncio.Event(), asyncio.Queue[None]()
    holders = [asyncio.create_task(hold(connections, hog, release, entered)) for _ in range(3)]
    holders.append(asyncio.create_task(hold(connections, quiet, release, entered)))
    await opened(entered, 4)
    waiter = asyncio.create_task(hold(connections, quiet, release))  # queues for a connection
    await asyncio.sleep(0.2)
    performance.sampler.sample()
    found = {b.kind: b for b in await performance.detect()}
    release.set()
    await asyncio.gather(*holders, waiter)
    assert "pool_saturated" in found
    assert "100% in use" in found["pool_saturated"].evidence
    assert found["tenant_hogging"].subject == hog
    assert found["tenant_hogging"].evidence.startswith("one tenant holds 75% of the pool: hog-")
    assert quiet not in {b.subject for b in found.values()}
    performance.sampler.sample()  # the waiter's wait is in this interval
    waits = performance._window.values("db_pool_wait_seconds", 60)
    assert waits
    assert max(waits) >= 0.15
    await monitoring.flush(everything=True)
    held = await monitoring.query(
        hog, "db_pool_in_use", step=600, aggregation="max", **around_now()
    )
    assert [p.value for p in held.points] == [3.0]  # in the hog's own series


async def test_trends_of_recorded_series(
    db: Database, settings: Settings, new_tenant: NewTenant
) -> None:
    # 36 to 30 hours ago: the platform's series are shared with every test of the database,
    # and the service's samplers write theirs now; the analysis looks from 30 hours ago
    clock = [time.time() - 36 * 3600]
    monitoring = MonitoringManager(db, aggregator=Aggregator(clock=lambda: clock[0]))
    tenant = (await new_tenant("trend")).id
    for minute in range(0, 6 * 60, 5):  # 6 hours: CPU rising, memory flat, the tenant's
        clock[0] += 300  # latency falling and its 5xx share rising
        monitoring.record("process_cpu_percent", 10 + minute / 6, None, PLATFORM_TENANT)
        monitoring.record("process_rss_bytes", 5e8, None, PLATFORM_TENANT)
        labels = {"route": "/x", "method": "GET", "status": "2xx"}
        monitoring.record("http_request_seconds", 0.5 - minute / 1000, labels, tenant)
        if minute > 180:
            failed = {**labels, "status": "5xx"}
            monitoring.record("http_request_seconds", 0.5 - minute / 1000, failed, tenant)
    await monitoring.flush(everything=True)
    then = datetime.fromtimestamp(clock[0], UTC)
    performance = PerformanceManager(
        db, monitoring=monitoring, settings=settings, clock=lambda: then
    )
    analytics = await performance.get_analytics(hours=8)
    cpu = analytics.trends["cpu_trend"]
    assert cpu.direction == "rising"
    assert cpu.slope_per_hour == pytest.approx(10, rel=0.1)  # 60 points a 6 h, as recorded
    assert cpu.r2 > 0.8
    assert analytics.trends["memory_trend"].direction == "stable"
    mine = await performance.get_analytics(hours=8, tenant_id=tenant)
    assert mine.trends["latency_trend"].direction == "falling"
    assert mine.trends["error_rate_trend"].direction == "rising"
    assert "cpu_trend" not in mine.trends
    for hours in (0, 169, True):
        with pytest.raises(InvalidInput):
            await performance.get_analytics(hours=hours)


def scripted(*scores: float) -> tuple[list[str], object]:
    """A measurement that answers ``scores`` in turn, and the phases it was asked for."""
    asked: list[str] = []
    left = list(scores)

    async def measure(phase: str) -> Measurement:
        asked.append(phase)
        return Measurement({"event_loop_lag_seconds": left[0]}, left.pop(0))

    return asked, measure


async def audited_rounds(db: Database) -> list[tuple[str, str, str]]:
    """(knob resource, round id, outcome) of the platform's ``performance.change`` entries."""
    entries = [
        e.entry
        for e in await trail_for(db).audit_log.entries(PLATFORM_TENANT, limit=10_000)
        if e.entry
    ]
    return [
        (e.resource, str((e.detail or {}).get("round_id")), str((e.detail or {}).get("outcome")))
        for e in entries
        if e.action == "performance.change"
    ]


@pytest.mark.parametrize(("after", "outcome"), [(0.5, "kept"), (3.0, "rolled_back")])
async def test_an_optimization_round_is_applied_measured_and_kept_or_rolled_back(  # noqa: PLR0917 - fixtures
    db: Database,
    settings: Settings,
    connections: ConnectionManager,
    new_tenant: NewTenant,
    after: float,
    outcome: str,
) -> None:
    hog = (await new_tenant("opt")).id
    cache = CacheManager(l1_bytes=1_000_000)
    asked, measure = scripted(1.0, after)
    performance = PerformanceManager(
        db,
        monitoring=MonitoringManager(db),
        connections=connections,
        cache=cache,
        settings=settings,
        thresholds=QUICK,
        measure=measure,  # type: ignore[arg-type]
    )
    bulkhead = connections.primary_member.pool.bulkhead  # type: ignore[union-attr]
    assert bulkhead.max_per_tenant == 4
    release, entered = asyncio.Event(), asyncio.Queue[None]()
    holders = [asyncio.create_task(hold(connections, hog, release, entered)) for _ in range(4)]
    await opened(entered, 4)
    try:
        result = await performance.optimize_performance(OptimizationStrategy.CONSERVATIVE)
    finally:
        release.set()
        await asyncio.gather(*holders)
    assert asked == ["before", "after"]
    assert result.outcome == outcome
    kinds = {b.kind for b in result.bottlenecks}
    assert {"pool_saturated", "tenant_hogging"} <= kinds
    assert len(result.changes) == 1  # conservative: one knob, one unit
    change = result.changes[0]
    assert (change.knob, change.old_value) in {("db_bulkhead_cap", 4.0), ("db_pool_max_size", 4.0)}
    assert abs(change.new_value - change.old_value) == 1
    knob = performance.knobs[change.knob]
    assert knob.read() == (change.new_value if outcome == "kept" else change.old_value)
    stored = [c for c in await performance.changes() if str(c["round_id"]) == result.round_id]
    assert [(c["knob"], c["outcome"], c["score_before"], c["score_after"]) for c in stored] == [
        (change.knob, outcome, 1.0, after)
    ]
    audited = (f"knob:{change.knob}", result.round_id, outcome)
    assert audited in await audited_rounds(db)
    knob.write(4.0)


async def test_nothing_to_optimize_changes_nothing(db: Database, settings: Settings) -> None:
    asked, measure = scripted(1.0, 1.0)
    performance = PerformanceManager(
        db,
        monitoring=MonitoringManager(db),
        settings=settings,
        measure=measure,  # type: ignore[arg-type]
    )
    result = await performance.optimize_performance("adaptive")
    assert (result.outcome, result.changes, asked) == ("unchanged", [], [])
    with pytest.raises(InvalidInput):
        await performance.optimize_performance("reckless")


async def test_slow_statements_are_reported_unavailable_without_the_extension(
    db: Database, settings: Settings
) -> None:
    performance = PerformanceManager(db, monitoring=MonitoringManager(db), settings=settings)
    current = await performance.get_current_performance()
    async with db.transaction() as conn:
        present = (
            await conn.execute(
                text("select 1 from pg_extension where extname = 'pg_stat_statements'")
            )
        ).first()
    assert current.slow_statements.available is (present is not None)
    if present is None:
        assert "pg_stat_statements" in current.slow_statements.reason
    assert "process_rss_bytes" in current.signals
    assert set(current.knobs) == set()  # no cache, no connections: nothing to turn


async def test_the_knobs_stay_within_their_bounds(
    connections: ConnectionManager, settings: Settings, db: Database
) -> None:
    cache = CacheManager(l1_bytes=1_000_000)
    performance = PerformanceManager(db, cache=cache, connections=connections, settings=settings)
    l1 = performance.knobs["cache_l1_bytes"]
    with pytest.raises(InvalidInput):
        l1.set(4_000_001)
    with tenant_scope(f"k-{uuid.uuid4().hex[:8]}"):
        for n in range(100):
            await cache.set(f"k{n}", "x" * 5000)
    l1.set(250_000)
    assert cache.l1.total_bytes <= 250_000  # shrinking evicted at once
    assert cache.l1.capacity_bytes == 250_000
    performance.knobs["cache_prefetch"].set(1)
    assert cache.prefetch is True

"""Downsampling and retention: 10-second buckets of two writers rolled into minutes, minutes
into hours, queries answering the same before and after, and a tier's retention applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.monitoring import MonitoringManager
from tenantry.monitoring.aggregate import Aggregator
from tenantry.monitoring.retention import Downsampler
from tests.conftest import NewTenant

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now


async def _resolutions(db: Database, tenant: str) -> dict[int, int]:
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            rows = await conn.execute(
                text(
                    "SELECT resolution, count(*) FROM tenantry.metric_points "
                    "GROUP BY resolution ORDER BY resolution"
                )
            )
            return {int(r): int(n) for r, n in rows}


async def _totals(monitor: MonitoringManager, tenant: str, step: int) -> list[float]:
    found = []
    for aggregation in ("count", "sum", "max", "p50"):
        series = await monitor.query(
            tenant,
            "latency",
            start=T0,
            end=T0 + timedelta(hours=2),
            step=step,
            aggregation=aggregation,
        )
        found.append(sum(p.value for p in series.points))
    return found


async def test_buckets_are_rolled_up_then_expired(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("ret")).id  # the free tier: 7 days
    for writer in range(2):  # two processes recording the same series
        clock = Clock()
        monitor = MonitoringManager(db, aggregator=Aggregator(resolution=10, clock=clock))
        for second in range(0, 3600, 5):  # an hour, a value every 5 s
            clock.now = T0.timestamp() + second
            monitor.record("latency", 0.010 + writer * 0.001 + (second % 60) / 1000, None, tenant)
        await monitor.flush(everything=True)
    assert await _resolutions(db, tenant) == {10: 2 * 360}
    reader = MonitoringManager(db)
    before = await _totals(reader, tenant, 3600)
    assert before[0] == 2 * 720

    now = [T0 + timedelta(hours=3)]
    downsampler = Downsampler(db, clock=lambda: now[0], batch=500)
    first = await downsampler.downsample(tenant)
    assert first.more  # 720 rows, 500 a visit, whole minutes only
    while (step := await downsampler.downsample(tenant)).more:
        pass
    assert step.to_minutes > 0
    assert await _resolutions(db, tenant) == {60: 60}  # one row a minute: the writers merged
    minutes = await _totals(reader, tenant, 3600)
    assert minutes[:3] == pytest.approx(before[:3])
    assert abs(minutes[3] - before[3]) <= 0.01 * before[3]

    now[0] = T0 + timedelta(days=3)
    assert (await downsampler.downsample(tenant)).to_hours == 60
    assert await _resolutions(db, tenant) == {3600: 1}
    hours = await _totals(reader, tenant, 3600)
    assert hours[:3] == pytest.approx(before[:3])

    now[0] = T0 + timedelta(days=6)
    assert (await downsampler.downsample(tenant)).expired == 0
    now[0] = T0 + timedelta(days=8)
    assert (await downsampler.downsample(tenant)).expired == 1
    assert await _resolutions(db, tenant) == {}

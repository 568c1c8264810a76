"""MonitoringManager on PostgreSQL: recorded values flushed per tenant and queried back, one
tenant's series invisible to another, bad input refused, and the HTTP route."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput
from tenantry.monitoring import Aggregation, MonitoringManager
from tenantry.monitoring.aggregate import Aggregator
from tests.conftest import TOKEN, NewTenant

START = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START.timestamp()

    def __call__(self) -> float:
        return self.now


def _manager(db: Database, clock: Clock) -> MonitoringManager:
    return MonitoringManager(db, aggregator=Aggregator(resolution=10, clock=clock))


async def test_recorded_values_are_flushed_and_queried_per_step(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("mon")).id
    clock = Clock()
    monitor = _manager(db, clock)
    for minute in range(3):  # 3 minutes, a value every 10 s on two routes
        for second in range(0, 60, 10):
            clock.now = START.timestamp() + minute * 60 + second
            await monitor.record_performance_metric(
                "request_seconds", 0.010 * (minute + 1), {"route": "/a"}, tenant_id=tenant
            )
            await monitor.record_performance_metric(
                "request_seconds", 1.0, {"route": "/b"}, tenant_id=tenant
            )
    await monitor.record_business_metric("active_users", 1250, tenant)
    clock.now += 10
    assert await monitor.flush() == 3 * 6 * 2 + 1
    end = START + timedelta(minutes=3)

    only_a = await monitor.query(
        tenant, "request_seconds", start=START, end=end, step=60, labels={"route": "/a"}
    )
    assert [p.time for p in only_a.points] == [START + timedelta(minutes=m) for m in range(3)]
    assert [round(p.value, 6) for p in only_a.points] == [0.01, 0.02, 0.03]
    both = await monitor.query(
        tenant, "request_seconds", start=START, end=end, step=180, aggregation="count"
    )
    assert [p.value for p in both.points] == [36.0]
    p95 = await monitor.query(
        tenant, "request_seconds", start=START, end=end, step=180, aggregation=Aggregation.P95
    )
    assert abs(p95.points[0].value - 1.0) <= 0.01  # half the values are 1 s
    low = await monitor.query(
        tenant, "request_seconds", start=START, end=end, step=60, aggregation="min"
    )
    assert [round(p.value, 6) for p in low.points] == [0.01, 0.02, 0.03]
    users = await monitor.query(
        tenant, "active_users", start=START, end=end, step=180, aggregation="sum"
    )
    assert [p.value for p in users.points] == [1250.0]


async def test_a_tenant_reads_its_own_series_only(db: Database, new_tenant: NewTenant) -> None:
    a, b = (await new_tenant("mon")).id, (await new_tenant("mon")).id
    clock = Clock()
    monitor = _manager(db, clock)
    await monitor.record_metric("releases", 3, {"label": "x"}, tenant_id=a)
    with tenant_scope(b):  # the caller's tenant when none is named
        await monitor.record_metric("releases", 5)
    await monitor.flush(everything=True)
    window = {"start": START, "end": START + timedelta(minutes=1), "step": 60}
    assert [p.value for p in (await monitor.query(a, "releases", **window)).points] == [3.0]
    assert [p.value for p in (await monitor.query(b, "releases", **window)).points] == [5.0]


async def test_a_failed_tenant_write_loses_its_own_buckets_only(
    db: Database, new_tenant: NewTenant
) -> None:
    real = (await new_tenant("mon")).id
    clock = Clock()
    monitor = _manager(db, clock)
    await monitor.record_metric("m", 1.0, tenant_id="no-such-tenant")
    await monitor.record_metric("m", 2.0, tenant_id=real)
    assert await monitor.flush(everything=True) == 1
    assert monitor.lost == {"no-such-tenant": 1}


@pytest.mark.parametrize(
    ("value", "match"),
    [(float("nan"), "finite"), (float("inf"), "finite"), (True, "number"), ("1", "number")],
)
async def test_bad_values_are_refused(db: Database, value: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        await MonitoringManager(db).record_metric("m", value, tenant_id="t-x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"step": 15}, "multiple of 10"),
        ({"step": 5}, "multiple of 10"),
        ({"end": START}, "after start"),
        ({"end": START + timedelta(days=365), "step": 10}, "at most"),
        ({"aggregation": "median"}, "one of"),
        ({"labels": {"route": 5}}, "strings"),
    ],
)
async def test_bad_queries_are_refused(
    db: Database, options: dict[str, object], match: str
) -> None:
    query: dict[str, object] = {
        "start": START,
        "end": START + timedelta(hours=1),
        "step": 60,
    } | options
    with pytest.raises(InvalidInput, match=match):
        await MonitoringManager(db).query("t-x", "m", **query)  # type: ignore[arg-type]


async def test_the_route_answers_the_callers_tenant(
    client: httpx.AsyncClient, new_tenant: NewTenant
) -> None:
    app = client._transport.app  # type: ignore[attr-defined]
    monitor: MonitoringManager = app.state.tenantry.monitoring
    assert monitor._collector is not None
    assert monitor._collector.running
    tenant = (await new_tenant("mon")).id
    await monitor.record_metric("sessions_created", 4, tenant_id=tenant)
    await monitor.record_metric("sessions_created", 99, tenant_id="platform")
    await monitor.flush(everything=True)
    now = datetime.now(UTC)
    params = {
        "name": "sessions_created",
        "start": (now - timedelta(minutes=5)).isoformat(),
        "end": (now + timedelta(minutes=5)).isoformat(),
        "step": 600,
        "aggregation": "sum",
    }
    answer = await client.get(
        "/monitoring/metrics", params=params, headers={**TOKEN, "X-Tenant-ID": tenant}
    )
    assert answer.status_code == 200, answer.text
    assert [p["value"] for p in answer.json()["points"]] == [4.0]
    bad = await client.get(
        "/monitoring/metrics",
        params={**params, "labels": "[1]"},
        headers={**TOKEN, "X-Tenant-ID": tenant},
    )
    assert bad.status_code == 422
    assert "labels" in bad.text
    # and that request itself is in the tenant's series, by route, method and status class
    await monitor.flush(everything=True)
    requests = await monitor.query(
        tenant,
        "http_request_seconds",
        start=now - timedelta(minutes=5),
        end=now + timedelta(minutes=5),
        step=600,
        aggregation="count",
        labels={"route": "/monitoring/metrics", "method": "GET", "status": "2xx"},
    )
    assert [p.value for p in requests.points] == [1.0]

"""Load forecasts from a tenant's recorded requests, and the scaling advice they give ahead of
the load, on PostgreSQL: the series are the monitoring manager's, written at chosen times."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import httpx
import pytest

from tenantry.ai import MultiSeasonalForecaster, fit_load
from tenantry.config import Settings, load_settings
from tenantry.db.engine import Database
from tenantry.errors import FeatureDisabled, InvalidInput
from tenantry.monitoring import MonitoringManager
from tenantry.monitoring.aggregate import Aggregator
from tenantry.performance import PerformanceManager, ScalingSpec
from tenantry.performance.planning import DEFAULT_HISTORY_HOURS, MAX_HISTORY_HOURS
from tests.conftest import TOKEN, NewTenant

HOUR = 3600
LABELS = {"route": "/x", "method": "GET", "status": "2xx"}


def daily(hour: int) -> int:
    """Requests in an hour: 360 at night, 1,080 in the afternoon (0.1 to 0.3 a second)."""
    return round(720 + 360 * math.sin(2 * math.pi * (hour % 24 - 9) / 24))


async def recorded(db: Database, tenant: str, days: int) -> datetime:
    """``days`` of a tenant's hourly requests, ending at a whole hour some days ago (nothing
    else writes the tenant's series); the time to look from."""
    end = (int(time.time()) // HOUR - 24 * 3) * HOUR
    clock = [float(end - days * 24 * HOUR)]
    monitoring = MonitoringManager(db, aggregator=Aggregator(clock=lambda: clock[0]))
    for hour in range(days * 24):
        clock[0] = end - (days * 24 - hour) * HOUR + 60.0
        for _ in range(daily(hour)):
            monitoring.record("http_request_seconds", 0.01, LABELS, tenant)
        await monitoring.flush(everything=True)
    return datetime.fromtimestamp(end + 1800, UTC)  # half an hour into the next hour


async def test_a_tenants_load_is_forecast_from_its_requests(
    db: Database, new_tenant: NewTenant, settings: Settings
) -> None:
    tenant = (await new_tenant("plan")).id
    now = await recorded(db, tenant, days=7)
    performance = PerformanceManager(db, settings=settings, clock=lambda: now)
    ahead = await performance.forecast_load(tenant_id=tenant, hours=24 * 7, horizon=24)
    assert ahead.model == "multiseasonal"  # the default forecaster: MSTL (a week: the day only)
    assert len(ahead.history) == 24 * 7
    default = fit_load(ahead.history, 24, 24)  # the product's default setting, a day ahead
    assert isinstance(default, MultiSeasonalForecaster)
    assert default.periods == (24,)
    assert default.boxcox_lambda is not None
    assert ahead.forecast == pytest.approx(default.forecast(24).mean)
    assert ahead.history[:3] == pytest.approx([daily(h) / HOUR for h in range(3)])
    expected = [daily(24 * 7 + h) / HOUR for h in range(24)]  # the next day, the same swing
    assert ahead.forecast == pytest.approx(expected, abs=0.02)
    bands = zip(ahead.lower, ahead.forecast, ahead.upper, strict=True)
    assert all(lo <= mid <= hi for lo, mid, hi in bands)
    nobody = (await new_tenant("plan")).id  # no requests: no load ahead, nothing fitted
    quiet = await performance.forecast_load(tenant_id=nobody, hours=48, horizon=6)
    assert (quiet.model, quiet.forecast) == ("none", (0.0,) * 6)
    wide = await performance.forecast_load(tenant_id=tenant)  # four weeks read by default
    assert len(wide.history) == DEFAULT_HISTORY_HOURS == 24 * 28
    assert wide.history[: 24 * 21] == (0.0,) * (24 * 21)  # three weeks before the recording
    weekly = fit_load(wide.history, 24, 24)
    assert isinstance(weekly, MultiSeasonalForecaster)
    assert weekly.periods == (24, 168)
    assert weekly.boxcox_lambda is None  # hours without load: no Box-Cox
    assert wide.forecast == pytest.approx([max(0.0, v) for v in weekly.forecast(24).mean])
    longest = await performance.forecast_load(tenant_id=tenant, hours=MAX_HISTORY_HOURS)
    assert len(longest.history) == 24 * 90  # the PREMIUM tier's retention of hourly buckets
    for bad in ({"hours": 0}, {"hours": 24 * 91}, {"horizon": 0}, {"horizon": 24 * 8}):
        with pytest.raises(InvalidInput):
            await performance.forecast_load(tenant_id=tenant, **bad)


async def test_scaling_advice_asks_for_the_pods_the_forecast_peak_needs(
    db: Database, new_tenant: NewTenant, settings: Settings
) -> None:
    tenant = (await new_tenant("plan")).id
    now = await recorded(db, tenant, days=7)
    off = PerformanceManager(db, settings=settings, clock=lambda: now)
    spec = ScalingSpec(min_replicas=1, max_replicas=20, target_per_pod=0.05)
    with pytest.raises(FeatureDisabled, match="ENABLE_PREDICTIVE_SCALING"):
        await off.scaling_advice(spec, current_replicas=2, tenant_id=tenant)
    on = load_settings(enable_predictive_scaling=True)
    performance = PerformanceManager(db, settings=on, clock=lambda: now)
    plan = await performance.scaling_advice(
        spec, current_replicas=2, lead_seconds=3 * HOUR, tenant_id=tenant
    )
    peak = max(plan.forecast.forecast[:3])  # the next three hours' highest forecast
    assert plan.advice.peak_load == pytest.approx(peak)
    assert plan.advice.raw == math.ceil(peak / 0.05)  # the HPA's rule, on the forecast
    assert plan.advice.replicas == plan.advice.raw  # a rise: no window holds it
    assert plan.manifest["spec"]["maxReplicas"] == 20
    assert "HorizontalPodAutoscaler" in plan.manifest_yaml
    with pytest.raises(InvalidInput):
        await performance.scaling_advice(spec, current_replicas=0, tenant_id=tenant)


async def test_the_routes_forecast_and_advise_for_the_operator(client: httpx.AsyncClient) -> None:
    ahead = await client.get("/performance/forecast?hours=48&horizon=6", headers=TOKEN)
    assert ahead.status_code == 200, ahead.text
    assert len(ahead.json()["forecast"]) == 6
    query = "current_replicas=2&target_per_pod=50"
    advice = await client.get(f"/performance/scaling?{query}", headers=TOKEN)
    assert advice.status_code == 409  # ENABLE_PREDICTIVE_SCALING is off in the tests' settings
    assert advice.headers["content-type"].startswith("application/problem+json")
    crossed = f"/performance/scaling?{query}&min_replicas=5&max_replicas=2"
    bad = await client.get(crossed, headers=TOKEN)
    assert bad.status_code == 422  # the bounds are checked before anything else
    for wrong in ("hours=0", "horizon=200", "tenant=NOT%20A%20TENANT"):
        refused = await client.get(f"/performance/forecast?{wrong}", headers=TOKEN)
        assert refused.status_code == 422, wrong

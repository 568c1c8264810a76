"""The managers' own metrics in the tenants' series: the service's sampler records each
tenant's cache hit ratio of the interval and the platform's breaker states."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tenantry.api import create_app
from tenantry.api.sampling import ServiceSampler
from tenantry.config import Settings
from tenantry.context import tenant_scope


async def test_the_sampler_records_cache_hit_ratios_and_breakers(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state.tenantry
        tenant = f"smp-{uuid.uuid4().hex[:12]}"
        await state.tenants.create(tenant, "Sampled")
        sampler = ServiceSampler(state.monitoring, state.cache, state.connections)
        sampler.sample()  # the counters so far are the baseline
        with tenant_scope(tenant):
            await state.cache.set("release", {"title": "Blue Hour"})
            for key in ("release", "release", "release", "missing"):
                await state.cache.get(key)
        assert sampler.sample() >= 3
        await state.monitoring.flush(everything=True)
        now = datetime.now(UTC)
        window = {"start": now - timedelta(minutes=5), "end": now + timedelta(minutes=5)}
        ratio = await state.monitoring.query(tenant, "cache_hit_ratio", step=600, **window)
        assert [p.value for p in ratio.points] == [0.75]
        lookups = await state.monitoring.query(
            tenant, "cache_lookups", step=600, aggregation="sum", **window
        )
        assert [p.value for p in lookups.points] == [4.0]
        breakers = await state.monitoring.query(
            "platform",
            "breaker_open",
            step=600,
            aggregation="max",
            labels={"backend": "postgres"},
            **window,
        )
        assert [p.value for p in breakers.points] == [0.0]

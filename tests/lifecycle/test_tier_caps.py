"""The tiers' ``metric_series`` and ``sessions``, enforced by the service from the tier policies:
a free tenant's series past its cap are dropped and counted while an enterprise tenant's are
not; a free tenant's live session past its cap is refused with 409, a revocation frees a slot,
and another tenant is not affected."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from tenantry.config import Settings
from tenantry.db.engine import Database
from tenantry.lifecycle import load_policies
from tenantry.lifecycle.quotas import MAX_TIER_READS, RequestLimiter
from tenantry.monitoring.aggregate import Aggregator
from tenantry.monitoring.manager import MonitoringManager
from tenantry.tenants import TenantRegistry, TenantTier
from tests.conftest import TOKEN, NewTenant
from tests.support.service import running_app


def policies_file(tmp_path: Path) -> Path:
    tiers = tmp_path / "tiers.toml"
    tiers.write_text(
        "[free]\nrequests_per_second = 1_000_000\nmetric_series = 3\nsessions = 3\n"
        "[enterprise]\nrequests_per_second = 1_000_000\n"
    )
    return tiers


async def test_each_tenants_series_cap_is_its_tiers(
    db: Database, new_tenant: NewTenant, tmp_path: Path
) -> None:
    free = (await new_tenant()).id
    big = (await new_tenant(tier="enterprise")).id
    limiter = RequestLimiter(TenantRegistry(db), load_policies(policies_file(tmp_path)))
    for tenant in (free, big):
        await limiter.tier(tenant)  # read once, as a request through the gate does
    monitoring = MonitoringManager(db, aggregator=Aggregator(max_series=1000))
    monitoring.aggregator.series_limit = limiter.metric_series
    assert all(monitoring.record(f"s{i}", 1.0, tenant_id=free) for i in range(3))
    assert monitoring.record("s3", 1.0, tenant_id=free) is False  # the 4th series
    assert monitoring.record("s0", 2.0, tenant_id=free)  # a known series still records
    assert all(monitoring.record(f"s{i}", 1.0, tenant_id=big) for i in range(10))
    assert monitoring.aggregator.dropped == {free: 1}
    assert (monitoring.aggregator.series(free), monitoring.aggregator.series(big)) == (3, 10)
    await limiter.close()


async def test_a_series_cap_before_the_tenants_first_request(
    db: Database, new_tenant: NewTenant, tmp_path: Path
) -> None:
    """A tenant whose tier this process has not read yet (no request here) gets the strictest
    tier's cap at once, and its own as soon as one background read of its tier ends."""
    late = (await new_tenant(tier="enterprise")).id
    limiter = RequestLimiter(TenantRegistry(db), load_policies(policies_file(tmp_path)))
    monitoring = MonitoringManager(db, aggregator=Aggregator(max_series=1000))
    monitoring.aggregator.series_limit = limiter.metric_series
    recorded = [monitoring.record(f"s{i}", 1.0, tenant_id=late) for i in range(5)]
    assert recorded == [True] * 3 + [False] * 2  # the free tier's 3, the strictest, meanwhile
    assert limiter.background_reads == 1  # one read for all five
    for _ in range(500):
        if limiter.cached_tier(late) is TenantTier.ENTERPRISE:
            break
        await asyncio.sleep(0.01)
    assert limiter.metric_series(late) == 1_000  # the shipped enterprise tier's
    assert all(monitoring.record(f"s{i}", 1.0, tenant_id=late) for i in range(10))
    assert limiter.background_reads == 1
    unknown = f"t-{uuid.uuid4().hex[:10]}"  # no such tenant: the strictest cap, one read failing
    assert limiter.metric_series(unknown) == 3
    assert limiter.background_reads == 2
    for _ in range(500):
        if not limiter.pending_reads:
            break
        await asyncio.sleep(0.01)
    assert limiter.cached_tier(unknown) is None
    assert limiter.metric_series(unknown) == 3
    assert limiter.background_reads == 2  # not tried again within TIER_TTL
    many = [f"t-{uuid.uuid4().hex[:10]}" for _ in range(MAX_TIER_READS + 10)]
    assert {limiter.metric_series(t) for t in many} == {3}
    assert limiter.background_reads <= 2 + MAX_TIER_READS  # bounded
    await limiter.close()


async def test_over_http_the_tiers_caps(settings: Settings, tmp_path: Path) -> None:
    async with running_app(settings, tier_policies=policies_file(tmp_path)) as (state, client):
        free, other = (f"cap-{uuid.uuid4().hex[:10]}" for _ in range(2))
        await state.tenants.create(free, "Free")
        await state.tenants.create(other, "Other", tier="standard")

        async def create(tenant: str, user: str) -> httpx.Response:
            return await client.post(
                "/sessions/create",
                json={"user_id": user},
                headers={**TOKEN, "X-Tenant-ID": tenant},
            )

        made = [await create(free, f"u{i}") for i in range(3)]
        assert [m.status_code for m in made] == [201] * 3
        refused = await create(free, "u3")
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        assert "limit of 3" in refused.json()["detail"]
        assert state.sessions.refused == {free: 1}
        listed = await state.sessions.list_sessions(free, "u3")
        assert listed == []  # nothing created
        gone = await client.delete(
            f"/sessions/{made[0].json()['session_id']}",
            headers={**TOKEN, "X-Tenant-ID": free},
        )
        assert gone.status_code == 204
        assert (await create(free, "u3")).status_code == 201  # the slot freed
        assert (await create(free, "u4")).status_code == 409
        others = [await create(other, f"u{i}") for i in range(5)]
        assert [o.status_code for o in others] == [201] * 5
        # the free tenant's tier is now cached by the limiter: its metric series are capped
        # (the service may have recorded some of its own for it already)
        aggregator = state.monitoring.aggregator
        kept = [state.monitoring.record(f"s{i}", 1.0, tenant_id=free) for i in range(5)]
        assert kept.count(False) >= 2
        assert aggregator.series(free) == 3
        assert aggregator.dropped[free] >= 2
        kept = [state.monitoring.record(f"s{i}", 1.0, tenant_id=other) for i in range(5)]
        assert all(kept)  # standard: 500 series

"""Each tenant's requests a second, by its tier: a token bucket per tenant, refused with 429 and
``Retry-After`` past the limit, one tenant's flood leaving another's requests alone; and the
workflow workers' caps from the same policies."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tenantry.api.workers import workflow_caps
from tenantry.config import Settings
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import RateLimited
from tenantry.lifecycle import load_policies
from tenantry.lifecycle.quotas import RequestLimiter
from tenantry.tenants import TenantRegistry, TenantTier
from tests.conftest import TOKEN, NewTenant
from tests.support.service import running_app, with_tiers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_bucket_per_tenant_at_its_tiers_rate(db: Database, new_tenant: NewTenant) -> None:
    free = (await new_tenant()).id
    pro = (await new_tenant(tier="premium")).id
    clock = Clock()
    limiter = RequestLimiter(TenantRegistry(db), load_policies(), clock=clock)
    for _ in range(20):  # free: 20 a second, a second's burst at once
        await limiter.take(free)
    with pytest.raises(RateLimited) as refused:
        await limiter.take(free)
    assert refused.value.retry_after == pytest.approx(0.05)
    for _ in range(500):  # premium: 500 a second; the free tenant's flood does not touch it
        await limiter.take(pro)
    clock.now += 0.5  # half a second: 10 more for the free tenant
    for _ in range(10):
        await limiter.take(free)
    with pytest.raises(RateLimited):
        await limiter.take(free)
    assert limiter.refused == {free: 2}
    await TenantRegistry(db).update_status(free, "suspended")
    await TenantRegistry(db).update_status(free, "active")
    limiter.forget(free)  # read again: the tier decides at once


async def test_over_http_429_with_retry_after_and_others_unaffected(
    settings: Settings, tmp_path: Path
) -> None:
    tiers = with_tiers(tmp_path, "[free]\nrequests_per_second = 3\n")
    async with running_app(settings, tier_policies=tiers) as (state, client):
        noisy, quiet = (f"rl-{uuid.uuid4().hex[:10]}" for _ in range(2))
        await state.tenants.create(noisy, "Noisy")
        await state.tenants.create(quiet, "Quiet")
        answers = [
            await client.get("/settings", headers={**TOKEN, "X-Tenant-ID": noisy}) for _ in range(5)
        ]
        assert [a.status_code for a in answers].count(200) == 3
        refused = answers[-1]
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "1"
        assert "3 requests a second" in refused.json()["detail"]
        other = await client.get("/settings", headers={**TOKEN, "X-Tenant-ID": quiet})
        assert other.status_code == 200


def test_workflow_caps_come_from_the_policies(settings: Settings, tmp_path: Path) -> None:
    assert workflow_caps(settings.model_copy(update={"tier_policies": None})) == {
        "free": 2, "standard": 4, "premium": 8, "enterprise": 16,
    }  # fmt: skip
    tiers = with_tiers(tmp_path, "[free]\nworkflow_concurrency = 5\n")
    caps = workflow_caps(settings.model_copy(update={"tier_policies": tiers}))
    assert caps[TenantTier.FREE.value] == 5


async def test_each_tenants_cache_budget_is_its_tiers_cache_bytes(
    settings: Settings, tmp_path: Path
) -> None:
    tiers = with_tiers(tmp_path, "[free]\ncache_bytes = 65_536\n")
    async with running_app(settings, tier_policies=tiers) as (state, client):
        free, big = (f"cb-{uuid.uuid4().hex[:10]}" for _ in range(2))
        await state.tenants.create(free, "Free")
        await state.tenants.create(big, "Big", tier="enterprise")
        for tenant in (free, big):  # the first request reads the tier: the budget is set
            answer = await client.get("/settings", headers={**TOKEN, "X-Tenant-ID": tenant})
            assert answer.status_code == 200
        l1 = state.cache.l1
        assert l1.stats(free).budget == 65_536
        assert l1.stats(big).budget == 268_435_456
        for i in range(64):  # 256 KiB each: four times the free tenant's budget
            l1.set(free, f"k{i}", b"x", 4096)
            l1.set(big, f"k{i}", b"x", 4096)
        assert l1.stats(free).bytes <= 65_536
        assert l1.stats(free).evictions + l1.stats(free).rejections > 0
        assert l1.stats(big).bytes > 65_536
        assert not l1.set(free, "huge", b"x", 65_537)  # larger than its budget: refused


async def test_a_tier_is_read_outside_an_open_transaction(
    db: Database, new_tenant: NewTenant
) -> None:
    """A quota asked inside a tenant's transaction (a workflow step writing metadata) reads the
    tier without joining that transaction (which would be refused: another tenant's scope)."""
    tenant = (await new_tenant(tier="premium")).id
    limiter = RequestLimiter(TenantRegistry(db), load_policies())
    with tenant_scope(tenant):
        async with db.tenant_transaction():
            assert (await limiter.policy(tenant)).tier is TenantTier.PREMIUM

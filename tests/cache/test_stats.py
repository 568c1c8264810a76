"""The cache's Prometheus collector: at most N tenants named, the rest summed under ``_other``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from tenantry.cache import CacheManager
from tenantry.cache.stats import OTHER_TENANTS, CacheCollector
from tenantry.context import tenant_scope


@pytest.fixture
async def cache() -> AsyncIterator[CacheManager]:
    manager = CacheManager(l1_bytes=8 * 1024 * 1024)
    await manager.start()
    yield manager
    await manager.close()


async def busy(cache: CacheManager, tenants: int) -> list[str]:
    """``tenants`` tenants, tenant ``i`` doing ``i + 1`` misses and ``i + 1`` hits."""
    names = [f"stat-{i:04d}" for i in range(tenants)]
    for i, name in enumerate(names):
        with tenant_scope(name):
            await cache.set("k", i)
            for _ in range(i + 1):
                await cache.get("k")
                await cache.get("absent")
    return names


def series(registry: CollectorRegistry, metric: str) -> dict[str, float]:
    return {
        sample.labels["tenant"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == metric
    }


async def test_the_most_active_tenants_are_named_and_the_rest_summed(
    cache: CacheManager,
) -> None:
    names = await busy(cache, 250)
    registry = CollectorRegistry()
    registry.register(CacheCollector(cache.tenants, cache.stats, max_tenants=100))
    hits = series(registry, "tenantry_cache_hits_total")
    assert len(hits) == 101
    assert set(names[150:]) < set(hits)  # the 100 busiest
    assert not set(names[:150]) & set(hits)
    assert hits[OTHER_TENANTS] == sum(range(1, 151))
    entries = series(registry, "tenantry_cache_entries")
    assert entries[OTHER_TENANTS] == 150
    assert sum(series(registry, "tenantry_cache_misses_total").values()) == sum(range(1, 251))


async def test_no_other_series_while_under_the_bound(cache: CacheManager) -> None:
    names = await busy(cache, 3)
    registry = CollectorRegistry()
    registry.register(CacheCollector(cache.tenants, cache.stats, max_tenants=3))
    assert set(series(registry, "tenantry_cache_hits_total")) == set(names)


async def test_a_bound_of_zero_names_no_tenant(cache: CacheManager) -> None:
    await busy(cache, 5)
    registry = CollectorRegistry()
    registry.register(CacheCollector(cache.tenants, cache.stats, max_tenants=0))
    assert series(registry, "tenantry_cache_hits_total") == {OTHER_TENANTS: 15.0}

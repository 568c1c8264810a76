"""The manager's short paths (an L1 hit in ``get``, ``set`` on L1 alone): the same answers,
counters, bytes and namespaces as the general paths."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tenantry.cache import CacheManager
from tenantry.cache.serde import Codec
from tenantry.context import tenant_scope
from tenantry.errors import InvalidInput, TenantContextError


def tenant() -> str:
    return f"h-{uuid.uuid4().hex[:10]}"


async def test_hits_and_misses_are_counted_once_each(cache: CacheManager) -> None:
    a, b = tenant(), tenant()
    with tenant_scope(a):
        await cache.set("k", "value")
        for _ in range(5):
            assert await cache.get("k") == "value"
        for _ in range(3):
            assert await cache.get("absent", "default") == "default"
        assert await cache.get_many(["k", "absent"]) == {"k": "value"}
        stats = cache.stats()
        assert (stats.hits, stats.l1_hits, stats.l2_hits, stats.misses) == (6, 6, 0, 4)
        assert stats.hit_ratio == 0.6
    with tenant_scope(b):
        assert await cache.get("k") is None  # a's key, b's namespace
        stats = cache.stats()
        assert (stats.hits, stats.misses, stats.entries) == (0, 1, 0)
    with tenant_scope(a):
        assert (cache.stats().hits, cache.stats().misses) == (6, 4)  # b's lookup is b's
    assert {a, b} <= set(cache.tenants())


async def test_a_tenant_never_hits_another_tenants_entry(cache: CacheManager) -> None:
    a, b = tenant(), tenant()
    with tenant_scope(a):
        await cache.set("shared-name", "a's")
    with tenant_scope(b):
        await cache.set("shared-name", "b's")
        assert await cache.get("shared-name") == "b's"
        await cache.delete("shared-name")
        assert await cache.get("shared-name") is None
    with tenant_scope(a):
        assert await cache.get("shared-name") == "a's"


async def test_a_set_charges_the_serialized_size_and_expires(cache: CacheManager) -> None:
    value = {"name": "Mira Vale", "tracks": list(range(40))}
    with tenant_scope(tenant()):
        await cache.set("bio", value, ttl=0.05)
        size = len(cache.codec.encode(value)) + len("bio") + 64  # the per-key overhead
        assert cache.stats().bytes == size
        assert await cache.get("bio") == value
        await asyncio.sleep(0.1)
        assert await cache.get("bio") is None
        assert await cache.get_many(["bio"]) == {}
        stats = cache.stats()
        assert (stats.hits, stats.misses) == (1, 2)


async def test_bad_input_is_refused_and_changes_nothing(cache: CacheManager) -> None:
    with pytest.raises(TenantContextError):
        await cache.set("k", 1)
    with tenant_scope(tenant()):
        await cache.set("k", 1)
        for bad in (0, -1, float("inf"), float("nan")):
            with pytest.raises(InvalidInput):
                await cache.set("k", 2, ttl=bad)
        with pytest.raises(InvalidInput):
            await cache.set("k", object())
        with pytest.raises(InvalidInput):
            await cache.set("", 2)
        for bad_key in ("", "k" * 1025, 5, ["k"]):
            with pytest.raises(InvalidInput):
                await cache.get(bad_key)  # type: ignore[arg-type]
        assert await cache.get("k") == 1
        assert (cache.stats().hits, cache.stats().misses) == (1, 0)  # bad lookups count nothing


async def test_a_stale_entry_is_a_hit_for_get_and_get_many_but_not_served(
    cache: CacheManager,
) -> None:
    async def load() -> str:
        return "v"

    with tenant_scope(tenant()):
        assert await cache.get_or_set("plays", load, ttl=0.05, stale_ttl=30) == "v"
        await asyncio.sleep(0.1)  # past its TTL, within its stale window
        assert await cache.get("plays", "default") == "default"
        assert await cache.get_many(["plays"]) == {}
        stats = cache.stats()
        assert (stats.l1_hits, stats.misses) == (2, 1)  # the miss is get_or_set's first lookup


async def test_the_inlined_hit_counts_every_read_exactly_and_never_serves_an_expired_entry(
    cache: CacheManager,
) -> None:
    reads = 3 * 256 + 5  # the read buffer drains three times and holds five
    with tenant_scope(tenant()):
        await cache.set("k", "value")
        await cache.set("brief", "value", ttl=0.05)
        for _ in range(reads):
            assert await cache.get("k") == "value"
        assert (cache.stats().hits, cache.stats().misses) == (reads, 0)
        assert await cache.get("brief") == "value"
        await asyncio.sleep(0.06)
        assert await cache.get("brief", "gone") == "gone"  # expired on the L1's clock
        stats = cache.stats()
        assert (stats.hits, stats.misses, stats.entries) == (reads + 1, 1, 1)
    with pytest.raises(TenantContextError):
        await cache.get("k")  # no tenant, no segment: the general path refuses


@pytest.mark.parametrize("threshold", [16, 300, 1024, 70_000])
def test_the_size_of_a_value_is_its_encoded_length(threshold: int) -> None:
    codec = Codec(compress_threshold=threshold)
    lengths = [0, 1, 30, 31, 32, 33, 254, 255, 256, 257, 1022, 1023, 1024, 65534, 65535, 65536]
    values: list[object] = [
        *("a" * n for n in lengths),
        *("é" * n for n in lengths[:8]),
        "a\x00b",
        "\U0001f3b5 tracks",
        b"bytes",
        None,
        12,
        ["a", 1],
        {"k": "v" * 40},
    ]
    for value in values:
        assert codec.size(value) == len(codec.encode(value)), repr(value)[:40]
        assert codec.decode(codec.encode(value)) == value

"""CacheManager on L1 alone and with the real Redis: namespacing, loads, stampedes, tags."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from tenantry.cache import CacheManager
from tenantry.cache.l2 import RedisTier
from tenantry.context import tenant_scope
from tenantry.errors import InvalidInput, TenantContextError
from tests.conftest import require_redis


def tenant() -> str:
    return f"c-{uuid.uuid4().hex[:10]}"


async def test_calls_need_a_tenant(cache: CacheManager) -> None:
    with pytest.raises(TenantContextError):
        await cache.get("k")


async def test_set_get_delete_many(cache: CacheManager) -> None:
    with tenant_scope(tenant()):
        assert await cache.get("missing", "default") == "default"
        await cache.set("a", {"n": 1, "tags": ["x"], "raw": b"\x00\xff"})
        assert await cache.get("a") == {"n": 1, "tags": ["x"], "raw": b"\x00\xff"}
        await cache.set_many({"b": 2, "c": "três"}, ttl=30)
        assert await cache.get_many(["a", "b", "c", "d"]) == {
            "a": {"n": 1, "tags": ["x"], "raw": b"\x00\xff"},
            "b": 2,
            "c": "três",
        }
        await cache.delete("a")
        assert await cache.get("a") is None


async def test_ttl_expires(cache: CacheManager) -> None:
    with tenant_scope(tenant()):
        await cache.set("short", 1, ttl=0.05)
        assert await cache.get("short") == 1
        await asyncio.sleep(0.08)
        assert await cache.get("short") is None


@pytest.mark.parametrize(
    "key",
    ["plain", "a:b", "}:k:plain", "tc:{OTHER}:k:plain", "ключ/🎵", "k:" * 100, " ", "\x00"],
)
async def test_no_key_reaches_another_tenant(cache: CacheManager, key: str) -> None:
    a, b = tenant(), tenant()
    with tenant_scope(b):
        await cache.set("b-only", "b-secret")
        await cache.set(key, "b-value")
    crafted = [key, key.replace("OTHER", b), f"tc:{{{b}}}:k:b-only", "b-only", f"}}:k:{key}"]
    with tenant_scope(a):
        for probe in crafted:
            assert await cache.get(probe) is None
        assert await cache.get_many(crafted) == {}
        await cache.set(key, "a-value")
        assert await cache.clear_tenant() >= 1
    with tenant_scope(b):
        assert await cache.get(key) == "b-value"
        assert await cache.get("b-only") == "b-secret"


async def test_bad_input_is_refused_and_changes_nothing(cache: CacheManager) -> None:
    with tenant_scope(tenant()):
        await cache.set("k", "before")
        with pytest.raises(InvalidInput, match="cannot cache a set"):
            await cache.set("k", {1, 2})
        with pytest.raises(InvalidInput, match="cannot cache a object"):
            await cache.set("k", object())
        with pytest.raises(InvalidInput, match="key"):
            await cache.set("", 1)
        with pytest.raises(InvalidInput, match="ttl"):
            await cache.set("k", 1, ttl=-1)
        with pytest.raises(InvalidInput, match="ttl"):
            await cache.set("k", 1, ttl=float("nan"))
        assert await cache.get("k") == "before"


async def test_single_flight_loads_once(cache: CacheManager) -> None:
    calls = 0

    async def loader() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "loaded"

    with tenant_scope(tenant()):
        results = await asyncio.gather(*(cache.get_or_set("hot", loader) for _ in range(50)))
        assert results == ["loaded"] * 50
        assert calls == 1
        assert await cache.get_or_set("hot", loader) == "loaded"
        assert calls == 1
        stats = cache.stats()
        assert stats.loads == 1
        assert stats.hits >= 1


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached(cache: CacheManager) -> None:
    calls = 0

    async def failing() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        raise RuntimeError("upstream down")

    async def ok() -> str:
        return "fine"

    with tenant_scope(tenant()):
        results = await asyncio.gather(
            *(cache.get_or_set("k", failing) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, RuntimeError) for r in results)
        assert calls == 1
        assert await cache.get_or_set("k", ok) == "fine"
        assert cache.stats().load_errors == 1


async def test_stale_value_is_served_while_one_refresh_runs(cache: CacheManager) -> None:
    version = 0

    async def loader() -> int:
        nonlocal version
        version += 1
        await asyncio.sleep(0.02)
        return version

    with tenant_scope(tenant()):
        assert await cache.get_or_set("k", loader, ttl=0.05, stale_ttl=10) == 1
        await asyncio.sleep(0.07)
        served = await asyncio.gather(
            *(cache.get_or_set("k", loader, ttl=0.05, stale_ttl=10) for _ in range(10))
        )
        assert served == [1] * 10  # stale, at once
        await asyncio.sleep(0.05)
        assert version == 2  # one refresh for ten callers
        assert await cache.get_or_set("k", loader, ttl=0.05, stale_ttl=10) == 2
        assert cache.stats().stale_served >= 10
        assert await cache.get("k") == 2


async def test_xfetch_refreshes_early_near_expiry() -> None:
    cache = CacheManager(xfetch_beta=1e9)  # any stored load time then means "refresh now"
    version = 0

    async def slow() -> int:
        nonlocal version
        version += 1
        await asyncio.sleep(0.01)
        return version

    with tenant_scope(tenant()):
        assert await cache.get_or_set("k", slow, ttl=60) == 1
        assert await cache.get_or_set("k", slow, ttl=60) == 1  # served, refresh scheduled
        await asyncio.sleep(0.05)
        assert version == 2
        assert cache.stats().early_refreshes >= 1
    plain = CacheManager()  # beta 1: with 60 s left and 10 ms loads, no early refresh
    with tenant_scope(tenant()):
        await plain.get_or_set("k", slow, ttl=60)
        for _ in range(100):
            await plain.get_or_set("k", slow, ttl=60)
        assert plain.stats().early_refreshes == 0
    await cache.close()


async def test_tags_invalidate_across_tiers(cache: CacheManager) -> None:
    with tenant_scope(tenant()):
        await cache.set("album:1", "a1", tags=["artist:7"])
        await cache.set("album:2", "a2", tags=["artist:7", "label:3"])
        await cache.set("album:3", "a3", tags=["label:3"])

        async def load() -> str:
            return "t1"

        await cache.get_or_set("track:1", load, tags=["artist:7"])
        assert await cache.invalidate_tags("artist:7") == 3
        assert await cache.get_many(["album:1", "album:2", "album:3", "track:1"]) == {
            "album:3": "a3"
        }


async def test_clear_tenant_leaves_others(cache: CacheManager) -> None:
    a, b = tenant(), tenant()
    for t in (a, b):
        with tenant_scope(t):
            await cache.set_many({f"k{i}": i for i in range(20)})
    with tenant_scope(a):
        await cache.clear_tenant()
        assert await cache.get_many([f"k{i}" for i in range(20)]) == {}
    with tenant_scope(b):
        assert len(await cache.get_many([f"k{i}" for i in range(20)])) == 20


async def test_large_values_are_compressed_in_redis() -> None:
    redis = Redis.from_url(require_redis())
    cache = CacheManager(redis=redis, compress_threshold=256)
    t = tenant()
    with tenant_scope(t):
        await cache.set("big", "la" * 5000)
        await cache.set("small", "la")
        big = await redis.get(RedisTier.key(t, "big"))
        small = await redis.get(RedisTier.key(t, "small"))
        assert big is not None
        assert small is not None
        assert big[16:17] == b"\x01"  # after the 16-byte envelope header: zstd
        assert small[16:17] == b"\x00"
        assert len(big) < 1000
        cache.l1.clear_tenant(t)
        assert await cache.get("big") == "la" * 5000  # from L2, decompressed
    await cache.close()
    await redis.aclose()


async def test_a_hammering_tenant_leaves_the_others_hit_ratio() -> None:
    """Bound: the quiet tenant keeps >= 95 % hits while another writes 30x the cache size."""
    cache = CacheManager(l1_bytes=512 * 1024)
    quiet, noisy = tenant(), tenant()

    async def value() -> str:
        return "x" * 200

    with tenant_scope(quiet):
        for i in range(200):
            await cache.get_or_set(f"q{i}", value)
    for round_ in range(30):
        with tenant_scope(noisy):
            for i in range(2000):
                await cache.set(f"n{round_}-{i}", "y" * 200)
        with tenant_scope(quiet):
            for i in range(200):
                await cache.get_or_set(f"q{i}", value)
    stats = cache.stats(quiet)
    assert stats.hit_ratio >= 0.95, stats
    assert cache.stats(noisy).evictions > 0

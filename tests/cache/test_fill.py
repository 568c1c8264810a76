"""Fills: a value read from the source of truth is cached only if no node dropped its key since.

The interleavings are deterministic: node B takes its token (before its read), node A deletes
(or invalidates), node B fills. Without Redis the same holds in one process.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tenantry.cache import CacheManager
from tenantry.context import tenant_scope
from tenantry.errors import InvalidInput
from tests.cache.test_distributed import node
from tests.conftest import require_redis


def tenant() -> str:
    return f"f-{uuid.uuid4().hex[:10]}"


async def test_a_fill_after_a_delete_is_refused_and_a_later_fill_is_not(
    cache: CacheManager,
) -> None:
    with tenant_scope(tenant()):
        token = await cache.fill_token("k")
        await cache.delete("k")  # after the token: the value read may be the deleted one
        assert await cache.fill("k", "stale", token, ttl=60) is False
        assert await cache.get("k") is None
        token = await cache.fill_token("k")  # after the delete
        assert await cache.fill("k", "fresh", token, ttl=60) is True
        assert await cache.get("k") == "fresh"
        token = await cache.fill_token("k")
        await cache.invalidate_tags("user:1")  # a tag the key had not yet
        assert await cache.fill("k", "stale", token, ttl=60, tags=["user:1"]) is False
        token = await cache.fill_token("k")
        await cache.clear_tenant()
        assert await cache.fill("k", "stale", token, ttl=60) is False
        with pytest.raises(InvalidInput):
            await cache.fill("other", "x", await cache.fill_token("k"))


async def test_a_set_after_a_delete_is_cached(cache: CacheManager) -> None:
    with tenant_scope(tenant()):
        await cache.delete("k")
        await cache.set("k", "new", ttl=60)  # authoritative: overwrites the tombstone
        assert await cache.get("k") == "new"
        if cache.l1 is not None:
            cache.l1.clear()  # from L2 (when there is one)
        assert await cache.get("k") == ("new" if cache.l2 is not None else None)


async def test_a_fill_on_node_b_after_a_delete_on_node_a_is_refused_on_both() -> None:
    url = require_redis()
    (a, ra), (b, rb) = await node(url), await node(url)
    try:
        with tenant_scope(tenant()):
            await a.set("k", "live", ttl=60)
            token = await b.fill_token("k")  # node B: token, then its read of "live"
            await a.delete("k")  # node A: the source changed, then its delete
            # B fills at once, whether or not A's invalidation has reached it: L2's tombstone
            # refuses the fill.
            assert await b.fill("k", "live", token, ttl=60) is False
            assert await b.get("k") is None
            assert await a.get("k") is None
            token = await b.fill_token("k")  # a read that began after the delete is cached
            assert await b.fill("k", "after", token, ttl=60) is True
            assert await a.get("k") == "after"  # from L2

            token = await b.fill_token("t")  # tags: the key was in no tag set yet
            await a.invalidate_tags("role")
            assert await b.fill("t", "live", token, ttl=60, tags=["role"]) is False
            assert await a.get("t") is None
    finally:
        for cache, redis in ((a, ra), (b, rb)):
            await cache.close()
            await redis.aclose()


async def test_tombstones_expire_and_a_read_older_than_them_is_refused() -> None:
    url = require_redis()
    (a, ra), (b, rb) = await node(url), await node(url)
    for cache in (a, b):
        assert cache.l2 is not None
        cache.l2.tombstone_ttl = 0.3
    try:
        with tenant_scope(tenant()):
            await a.delete("k")
            await asyncio.sleep(0.4)  # the tombstone has expired
            token = await b.fill_token("k")
            assert await b.fill("k", "v", token, ttl=60) is True
            assert await a.get("k") == "v"
            token = await b.fill_token("k")
            await asyncio.sleep(0.4)  # a read longer than a tombstone lives: maybe unseen
            assert await b.fill("k", "v", token, ttl=60) is False
    finally:
        for cache, redis in ((a, ra), (b, rb)):
            await cache.close()
            await redis.aclose()


async def test_a_load_that_began_before_a_delete_is_returned_but_not_cached() -> None:
    url = require_redis()
    (a, ra), (b, rb) = await node(url), await node(url)
    try:
        with tenant_scope(tenant()):

            async def read_then_deleted_on_a() -> str:
                await a.delete("k")  # node A changes the source and deletes, mid-load
                return "stale"

            assert await b.get_or_set("k", read_then_deleted_on_a, ttl=60) == "stale"
            assert await b.get("k") is None
            assert await a.get("k") is None

            async def fresh() -> str:
                return "fresh"

            assert await b.get_or_set("k", fresh, ttl=60) == "fresh"  # began after: cached
            assert await a.get("k") == "fresh"
    finally:
        for cache, redis in ((a, ra), (b, rb)):
            await cache.close()
            await redis.aclose()

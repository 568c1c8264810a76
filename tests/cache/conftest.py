"""The cache manager the cache tests share: on L1 alone, and on L1 with Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tenantry.cache import CacheManager
from tests.conftest import require_redis


@pytest.fixture(params=["l1", "l1+redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[CacheManager]:
    redis = Redis.from_url(require_redis()) if request.param == "l1+redis" else None
    manager = CacheManager(redis=redis, l1_bytes=8 * 1024 * 1024)
    await manager.start()
    if manager.bus is not None:  # subscribing drops the node's L1: wait until it has
        await asyncio.wait_for(manager.bus.connected.wait(), 5)
    yield manager
    await manager.close()
    if redis is not None:
        await redis.aclose()

"""HTTP routes of the cache: the caller's tenant's statistics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from tenantry.access.actions import CACHE_READ
from tenantry.access.deps import require
from tenantry.access.principal import Principal
from tenantry.cache.manager import CacheManager
from tenantry.cache.stats import CacheStats

__all__ = ["router"]

router = APIRouter(tags=["cache"])


def _cache(request: Request) -> CacheManager:
    cache: CacheManager = request.app.state.tenantry.cache
    return cache


CacheDep = Annotated[CacheManager, Depends(_cache)]


@router.get("/cache/stats", summary="Cache statistics of the caller's tenant")
async def cache_stats(
    caller: Annotated[Principal, require(CACHE_READ)], cache: CacheDep
) -> CacheStats:
    return cache.stats(caller.tenant_id)

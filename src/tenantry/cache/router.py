"""HTTP routes of the cache: the caller's tenant's statistics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from tenantry.actions import CACHE_READ
from tenantry.cache.manager import CacheManager
from tenantry.cache.stats import CacheStats
from tenantry.http import Route, provided, require
from tenantry.principal import Principal

__all__ = ["router"]

router = APIRouter(tags=["cache"], route_class=Route)


CacheDep = Annotated[CacheManager, Depends(provided("cache"))]


@router.get("/cache/stats", summary="Cache statistics of the caller's tenant")
async def cache_stats(
    caller: Annotated[Principal, require(CACHE_READ)], cache: CacheDep
) -> CacheStats:
    return cache.stats(caller.tenant_id)

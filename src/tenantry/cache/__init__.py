"""CacheManager: tenant-namespaced L1 + Redis L2 cache with stampede control and invalidation."""

from tenantry.cache.manager import CacheManager
from tenantry.cache.stats import CacheStats

__all__ = ["CacheManager", "CacheStats"]

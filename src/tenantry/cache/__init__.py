"""CacheManager: tenant-namespaced L1 + Redis L2 cache with stampede control and invalidation.

``tenant_key`` names a tenant's Redis key with its hash tag (one Redis Cluster slot a tenant), as
the cache and the shared request limit do, for a deployment's own keys beside them."""

from tenantry.cache.l2 import tenant_key
from tenantry.cache.manager import CacheManager, FillToken
from tenantry.cache.stats import CacheStats

__all__ = ["CacheManager", "CacheStats", "FillToken", "tenant_key"]

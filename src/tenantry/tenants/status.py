"""Whether a tenant is active, as every credential check asks it (DESIGN invariant 10).

Every credential of a tenant that is not active is refused: the service token acting for it,
its session tokens and its API keys. The answer "active" is cached in the tenant's own cache
namespace for ``ttl`` seconds; a status change through the app's registry drops it at once
(:meth:`ActiveTenants.forget`, wired as the registry's ``on_status_change``), on every node when
the cache has Redis (its invalidation channel), and the TTL bounds the rest. Only "active" is
cached: a suspended tenant is asked again each time.

The cache is whatever offers ``get``/``set``/``delete`` in the current tenant's namespace (the
:class:`~tenantry.cache.CacheManager`, a layer above this one, does).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

from tenantry.context import tenant_scope
from tenantry.errors import TenantNotFound
from tenantry.tenants.manager import TenantRegistry

__all__ = ["ACTIVE_KEY", "ACTIVE_TTL", "ActiveTenants", "StatusCache"]

#: The cache key of "this tenant is active" (in the tenant's own cache namespace).
ACTIVE_KEY = "tenant:active"
#: How long a node trusts that a tenant is active without asking the registry.
ACTIVE_TTL = 5.0


class StatusCache(Protocol):
    """The cache operations :class:`ActiveTenants` needs, in the current tenant's namespace."""

    async def get(self, key: str, default: Any = None) -> Any: ...

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def fill_token(self, key: str) -> Any: ...  # the cache's own token type (a layer up)

    async def fill(self, key: str, value: Any, token: Any, ttl: float | None = None) -> bool: ...


class ActiveTenants:
    """Raises unless a tenant exists and is active; cached, and forgotten on a status change."""

    def __init__(
        self,
        registry: TenantRegistry,
        cache: StatusCache,
        *,
        ttl: float = ACTIVE_TTL,
        remember: int = 100_000,
    ) -> None:
        self._registry = registry
        self._cache = cache
        self.ttl = ttl
        # Tenants known to exist. A tenant is never removed from the registry (deletion is a
        # status), so this holds without expiry; bounded, least recently confirmed out first.
        self._existing: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    async def check(self, tenant_id: str) -> None:
        """In ``tenant_id``'s scope: :class:`TenantNotFound` or :class:`TenantNotActive` unless
        it is active."""
        if await self._cache.get(ACTIVE_KEY) is True:
            return
        fill = await self._cache.fill_token(ACTIVE_KEY)  # before the read: see CacheManager.fill
        await self._registry.get_active(tenant_id)
        await self._cache.fill(ACTIVE_KEY, True, fill, ttl=self.ttl)

    def exists(self, tenant_id: str) -> bool:
        """Whether ``tenant_id`` is known here to exist (no I/O; False: ask :meth:`known`)."""
        return tenant_id in self._existing

    async def known(self, tenant_id: str) -> bool:
        """Whether ``tenant_id`` names a tenant, whatever its status.

        Credential checks ask this before they touch anything of the tenant (its cache
        namespace, its tables, its security events), so that a forged credential naming no
        tenant is refused like any bad one and allocates nothing; a genuine credential of a
        tenant that is not active is refused after it is proven genuine (:meth:`check`).
        """
        if tenant_id in self._existing:
            return True
        try:
            await self._registry.get(tenant_id)
        except TenantNotFound:
            return False
        self._existing[tenant_id] = None
        if len(self._existing) > self._remember:
            self._existing.popitem(last=False)
        return True

    async def ensure(self, tenant_id: str) -> None:
        """:meth:`check`, entering ``tenant_id``'s scope."""
        with tenant_scope(tenant_id):
            await self.check(tenant_id)

    async def forget(self, tenant_id: str) -> None:
        """Drop the cached answer for ``tenant_id`` (its status changed)."""
        with tenant_scope(tenant_id):
            await self._cache.delete(ACTIVE_KEY)

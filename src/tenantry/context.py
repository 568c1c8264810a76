"""The current tenant: one contextvar, set with :func:`tenant_scope`.

The value follows asyncio tasks (each task copies the context it was created in), so concurrent
requests for different tenants never see each other's tenant. Scopes nest only with the same
tenant: code that already acts for one tenant cannot quietly switch to another.
"""

from __future__ import annotations

import re
from contextvars import ContextVar, Token

from tenantry.errors import InvalidTenantId, TenantContextError

__all__ = [
    "PLATFORM_TENANT",
    "RESERVED_TENANTS",
    "TENANT_ID_PATTERN",
    "current_tenant",
    "get_tenant",
    "tenant_scope",
    "validate_tenant_id",
]

#: 3-63 characters of ``[a-z0-9_-]``, starting with a letter or digit. The database checks the
#: same pattern on ``tenants.id``; the tenant transaction relies on it (see ``db/engine.py``).
TENANT_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{2,62}$"
_TENANT_ID = re.compile(TENANT_ID_PATTERN)

#: The reserved tenant of the platform itself: its audit tree holds the platform's own events
#: (tenant registry changes, key changes), and only the operator's service token acts for it.
#: Migration 0003 creates it; nobody can create a tenant with this id.
PLATFORM_TENANT = "platform"
#: Tenant ids tenantry keeps for itself.
RESERVED_TENANTS = frozenset({PLATFORM_TENANT})

_current: ContextVar[str | None] = ContextVar("tenantry_tenant", default=None)


def validate_tenant_id(tenant_id: object) -> str:
    """Return ``tenant_id`` if it is a valid tenant id, else raise :class:`InvalidTenantId`."""
    if not isinstance(tenant_id, str) or _TENANT_ID.fullmatch(tenant_id) is None:
        shown = InvalidTenantId.excerpt(tenant_id)
        raise InvalidTenantId(
            f"invalid tenant id {shown}: use 3-63 characters of a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
    return tenant_id


def current_tenant() -> str | None:
    """The tenant of the running code, or ``None`` outside every :func:`tenant_scope`."""
    return _current.get()


def get_tenant() -> str:
    """The tenant of the running code; raises :class:`TenantContextError` when there is none."""
    tenant = _current.get()
    if tenant is None:
        raise TenantContextError("no tenant in context: wrap the call in tenant_scope(tenant_id)")
    return tenant


class tenant_scope:  # lower case: used like the function it replaced, `with tenant_scope(t):`
    """Run the block as ``tenant_id``: ``with tenant_scope("aurora-records"): ...``.

    Nesting a scope for the same tenant is allowed; nesting a different tenant raises
    :class:`TenantContextError`, since code acting for one tenant must never reach another.
    (A class rather than a generator: it is entered on every request's hot path.)
    """

    __slots__ = ("_token", "tenant_id")

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = validate_tenant_id(tenant_id)
        self._token: Token[str | None] | None = None

    def __enter__(self) -> str:
        outer = _current.get()
        if outer is not None and outer != self.tenant_id:
            raise TenantContextError(
                f"cannot enter tenant {self.tenant_id!r} inside the scope of tenant {outer!r}"
            )
        self._token = _current.set(self.tenant_id)
        return self.tenant_id

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

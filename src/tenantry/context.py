"""The current tenant: one contextvar, set with :func:`tenant_scope`.

The value follows asyncio tasks (each task copies the context it was created in), so concurrent
requests for different tenants never see each other's tenant. Scopes nest only with the same
tenant: code that already acts for one tenant cannot quietly switch to another.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tenantry.errors import InvalidTenantId, TenantContextError

__all__ = [
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

_current: ContextVar[str | None] = ContextVar("tenantry_tenant", default=None)


def validate_tenant_id(tenant_id: object) -> str:
    """Return ``tenant_id`` if it is a valid tenant id, else raise :class:`InvalidTenantId`."""
    if not isinstance(tenant_id, str) or _TENANT_ID.fullmatch(tenant_id) is None:
        raise InvalidTenantId(
            f"invalid tenant id {tenant_id!r}: use 3-63 characters of a-z, 0-9, '_' and '-', "
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


@contextmanager
def tenant_scope(tenant_id: str) -> Iterator[str]:
    """Run the block as ``tenant_id``.

    Nesting a scope for the same tenant is allowed; nesting a different tenant raises
    :class:`TenantContextError`, since code acting for one tenant must never reach another.
    """
    tenant = validate_tenant_id(tenant_id)
    outer = _current.get()
    if outer is not None and outer != tenant:
        raise TenantContextError(
            f"cannot enter tenant {tenant!r} inside the scope of tenant {outer!r}"
        )
    token = _current.set(tenant)
    try:
        yield tenant
    finally:
        _current.reset(token)

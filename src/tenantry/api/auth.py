"""Authentication: who the caller is, as a :class:`~tenantry.access.principal.Principal`.

``Authorization: Bearer <credential>`` carries one of:

- a session token (``tnt_s_...``): the session's user, with their roles in the tenant;
- an API key (``tnt_k_...``): the tenant's service account, role ``service``, its scopes;
- the service token (``TENANTRY_API_TOKEN``) with ``X-Tenant-ID``: the platform backend acting
  for that tenant (role ``platform``); the tenant must exist and be active.

With a session token or API key, an ``X-Tenant-ID`` naming another tenant is a probe of another
tenant: it is recorded as a security event and answered 404, as if the tenant did not exist.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from tenantry.access.principal import Principal, PrincipalKind
from tenantry.access.probes import record_probe
from tenantry.api.deps import StateDep
from tenantry.api.state import AppState
from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.errors import AuthenticationError, NotFound
from tenantry.sessions.schemas import ClientInfo
from tenantry.tenants.manager import TenantRegistry

__all__ = [
    "CurrentPrincipal",
    "client_info",
    "current_principal",
    "ensure_active",
    "forget_active",
]


def client_info(request: Request) -> ClientInfo:
    """What the request says about the client: IP, user agent, ``X-Device-ID``."""
    headers = request.headers
    return ClientInfo(
        ip=request.client.host if request.client else None,
        user_agent=(headers.get("user-agent") or "")[:512] or None,
        device_id=(headers.get("x-device-id") or "")[:128] or None,
    )


#: The cache key of "this tenant is active" (in the tenant's own cache namespace).
ACTIVE_KEY = "tenant:active"
#: How long a node trusts that a tenant is active without asking the registry. A status change
#: through the API drops the entry at once (on every node, with Redis); this bounds the rest.
ACTIVE_TTL = 5.0


async def ensure_active(state: AppState, tenant_id: str) -> None:
    """The tenant exists and is active (cached for ``ACTIVE_TTL``): else 404 / 403."""
    with tenant_scope(tenant_id):
        if await state.cache.get(ACTIVE_KEY) is True:
            return
        await TenantRegistry(state.database).get_active(tenant_id)
        await state.cache.set(ACTIVE_KEY, True, ttl=ACTIVE_TTL)


async def forget_active(state: AppState, tenant_id: str) -> None:
    """Drop the cached "active" of ``tenant_id`` (after its status changed)."""
    with tenant_scope(tenant_id):
        await state.cache.delete(ACTIVE_KEY)


async def current_principal(
    request: Request,
    state: StateDep,
    authorization: Annotated[str | None, Header()] = None,
    x_tenant_id: Annotated[str | None, Header(description="The tenant to act for")] = None,
) -> Principal:
    scheme, _, credential = (authorization or "").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise AuthenticationError(
            "send 'Authorization: Bearer <session token, API key or service token>'"
        )
    if credential.startswith("tnt_s_"):
        principal = await state.sessions.validate(credential, client=client_info(request))
    elif credential.startswith("tnt_k_"):
        principal = await state.api_keys.authenticate(credential)
    elif hmac.compare_digest(credential.encode(), state.api_token.encode()):
        if x_tenant_id is None:
            raise AuthenticationError("the service token needs X-Tenant-ID: the tenant to act for")
        tenant_id = validate_tenant_id(x_tenant_id)
        await ensure_active(state, tenant_id)
        return Principal(tenant_id, "platform", PrincipalKind.SERVICE, frozenset({"platform"}))
    else:
        raise AuthenticationError("unknown credential")
    if x_tenant_id is not None and x_tenant_id != principal.tenant_id:
        await record_probe(
            principal, f"tenant {x_tenant_id[:64]!r}", request, database=state.database
        )
        raise NotFound("no such tenant")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]

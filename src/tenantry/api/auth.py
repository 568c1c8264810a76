"""The app's :class:`~tenantry.http.Gate`: who a credential is, and what it may do.

``Authorization: Bearer <credential>`` carries one of:

- a session token (``tnt_s_...``): the session's user, with their roles in the tenant;
- an API key (``tnt_k_...``): the tenant's service account, role ``service``, its scopes;
- the service token (``TENANTRY_API_TOKEN``) with ``X-Tenant-ID``: the platform backend acting
  for that tenant (role ``platform``); the tenant must exist and be active.

A tenant's requests beyond its tier's ``requests_per_second`` are refused after its credential
is checked (429, :class:`~tenantry.lifecycle.quotas.RequestLimiter`).

Every credential of a tenant that is not active is refused (sessions and API keys check it as
they validate, with the same :class:`~tenantry.tenants.ActiveTenants`). With a session token or
API key, an ``X-Tenant-ID`` naming another tenant is a probe of another tenant: it is recorded as
a security event and answered 404, as if the tenant did not exist.
An authenticated principal may perform an action if the access policy allows it and, for an
admin action of a session (whatever its type and level: its roles decide), after a fresh passkey
step-up.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

from tenantry.access.manager import AccessControl
from tenantry.access.probes import record_probe
from tenantry.context import RESERVED_TENANTS, validate_tenant_id
from tenantry.db.engine import Database
from tenantry.errors import AuthenticationError, NotFound, StepUpRequired
from tenantry.http import client_info
from tenantry.lifecycle.quotas import RequestLimiter
from tenantry.principal import Principal, platform_principal
from tenantry.sessions.api_keys import ApiKeys
from tenantry.sessions.manager import SessionManager
from tenantry.tenants.status import ActiveTenants
from tenantry.tracing import traced

__all__ = ["TenantGate"]


class TenantGate:
    """Authentication by sessions, API keys and the service token; authorization by the policy."""

    def __init__(
        self,
        *,
        api_token: str,
        database: Database,
        active: ActiveTenants,
        sessions: SessionManager,
        api_keys: ApiKeys,
        access: AccessControl,
        limiter: RequestLimiter | None = None,
    ) -> None:
        self._token = api_token.encode()
        #: Each tenant's requests a second, by its tier (None: no limit).
        self._limiter = limiter
        self._database = database
        self._active = active
        self._sessions = sessions
        self._api_keys = api_keys
        self._access = access

    @traced("auth.authenticate")
    async def authenticate(
        self, request: Request, credential: str, tenant_id: str | None
    ) -> Principal:
        if credential.startswith("tnt_s_"):
            principal = await self._sessions.validate(credential, client=client_info(request))
        elif credential.startswith("tnt_k_"):
            principal = await self._api_keys.authenticate(credential)
        elif hmac.compare_digest(credential.encode(), self._token):
            if tenant_id is None:
                raise AuthenticationError(
                    "the service token needs X-Tenant-ID: the tenant to act for"
                )
            await self._active.ensure(validate_tenant_id(tenant_id))
            await self._limit(tenant_id)
            return platform_principal(tenant_id)
        else:
            raise AuthenticationError("unknown credential")
        if principal.tenant_id in RESERVED_TENANTS:  # the platform is the service token's alone
            raise AuthenticationError("unknown credential")
        if tenant_id is not None and tenant_id != principal.tenant_id:
            await record_probe(
                principal, f"tenant {tenant_id[:64]!r}", request, database=self._database
            )
            raise NotFound("no such tenant")
        await self._limit(principal.tenant_id)
        return principal

    async def _limit(self, tenant_id: str) -> None:
        if self._limiter is not None:
            await self._limiter.take(tenant_id)

    def authenticate_platform(self, credential: str) -> Principal:
        if not hmac.compare_digest(credential.encode(), self._token):
            raise AuthenticationError(
                "send the service token as 'Authorization: Bearer <credential>'"
            )
        return platform_principal()

    def authorize(self, principal: Principal, action: str) -> None:
        self._access.check(principal, action)
        if self._access.needs_admin(action) and self._sessions.needs_step_up(principal):
            raise StepUpRequired(
                f"{action} needs a fresh passkey assertion: POST /sessions/<id>/step-up first"
            )

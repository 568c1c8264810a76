"""Foreign-tenant probes: a request for another tenant's resource answers 404 and is recorded.

DESIGN invariant 5: the caller learns nothing (the answer is the one for a resource that does not
exist), and the tenant the caller acts for gets a ``foreign_tenant_probe`` security event, which
the threat analysis scores. Kept apart from ``deps.py`` so authentication can use it too.
"""

from __future__ import annotations

from starlette.requests import Request

from tenantry.context import validate_tenant_id
from tenantry.db.engine import Database
from tenantry.errors import InvalidTenantId, NotFound, TenantryError
from tenantry.logging import get_logger
from tenantry.principal import Principal
from tenantry.threats.events import SecurityEvents, Severity

__all__ = ["PROBE_EVENT", "ensure_own_tenant", "record_probe"]

PROBE_EVENT = "foreign_tenant_probe"
_log = get_logger("tenantry.access")


def _database(request: Request) -> Database:
    database: Database = request.app.state.tenantry.database
    return database


async def record_probe(
    principal: Principal, resource: str, request: Request, *, database: Database | None = None
) -> None:
    """Record that ``principal`` asked for ``resource``, which belongs to another tenant.

    The event goes to the caller's own tenant. A failure to record it is logged, not raised, so
    the caller still gets the same 404 as for a resource that does not exist.
    """
    try:
        validate_tenant_id(principal.tenant_id)
    except InvalidTenantId:
        _log.warning("foreign tenant probe without a tenant", resource=resource)
        return
    try:
        await SecurityEvents(database or _database(request)).record(
            principal.tenant_id,
            PROBE_EVENT,
            severity=Severity.MEDIUM,
            principal_id=principal.principal_id,
            session_id=principal.session_id,
            ip=request.client.host if request.client else None,
            detail={
                "resource": resource,
                "path": request.url.path,
                "method": request.method,
                "kind": principal.kind.value,
            },
        )
    except TenantryError as exc:
        _log.error("could not record a foreign tenant probe", error=type(exc).__name__)


async def ensure_own_tenant(
    principal: Principal,
    resource_tenant: str | None,
    resource: str,
    request: Request,
    *,
    database: Database | None = None,
) -> None:
    """Pass when ``resource`` (of ``resource_tenant``) is in the caller's tenant; else raise
    :class:`NotFound`, as for a resource that does not exist, after recording the probe when
    ``resource`` names another tenant (``resource_tenant`` None: it names none, a plain 404)."""
    if resource_tenant == principal.tenant_id:
        return
    if resource_tenant is not None:
        await record_probe(principal, resource, request, database=database)
    raise NotFound(f"{resource!r} does not exist")

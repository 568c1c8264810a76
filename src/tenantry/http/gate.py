"""The gate: who a request's credential is, and whether it may do an action.

The routers of every domain declare what they need with the dependencies of
:mod:`tenantry.http.deps`; those ask the app's :class:`Gate` (``app.state.tenantry.gate``),
which the app assembles from the managers above the routers' domains (sessions, API keys, the
tenant registry, access control). So a domain's router depends on this protocol, not on the
managers that implement it, and the layers stay acyclic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from starlette.requests import Request

from tenantry.errors import AuthenticationError
from tenantry.principal import ClientInfo, Principal

__all__ = ["Gate", "bearer_credential", "client_info", "gate", "provided"]


class Gate(Protocol):
    """Authentication and authorization of HTTP callers, as the routers see them."""

    async def authenticate(
        self, request: Request, credential: str, tenant_id: str | None
    ) -> Principal:
        """The principal of ``credential``; ``tenant_id`` is ``X-Tenant-ID`` (the tenant the
        service token acts for; any other tenant named by another credential is a probe, 404)."""

    def authenticate_platform(self, credential: str) -> Principal:
        """The platform itself, if ``credential`` is the service token."""

    def authorize(self, principal: Principal, action: str) -> None:
        """Raise unless ``principal`` may perform ``action`` now (policy, step-up)."""


def bearer_credential(authorization: str | None, what: str) -> str:
    """The credential of ``Authorization: Bearer <credential>``; else AuthenticationError
    asking for ``what``."""
    scheme, _, credential = (authorization or "").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise AuthenticationError(f"send {what} as 'Authorization: Bearer <credential>'")
    return credential


def client_info(request: Request) -> ClientInfo:
    """What the request says about the client: IP, user agent, ``X-Device-ID``."""
    headers = request.headers
    return ClientInfo(
        ip=request.client.host if request.client else None,
        user_agent=(headers.get("user-agent") or "")[:512] or None,
        device_id=(headers.get("x-device-id") or "")[:128] or None,
    )


def gate(request: Request) -> Gate:
    """The app's gate (made in its lifespan)."""
    found: Gate = request.app.state.tenantry.gate
    return found


def provided(name: str) -> Callable[[Request], Any]:
    """A dependency: the part ``name`` of what the app's lifespan made (``state.tenantry.<name>``),
    e.g. ``Annotated[AuditLog, Depends(provided("audit"))]``."""

    def part(request: Request) -> Any:
        return getattr(request.app.state.tenantry, name)

    part.__qualname__ = f"provided({name!r})"
    return part

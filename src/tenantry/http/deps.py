"""What routers declare: who the caller is, and the action each route needs, or why not.

- ``Annotated[Principal, require("settings:read")]``: authenticates the caller
  (:func:`current_principal`) and has the app's :class:`~tenantry.http.gate.Gate` check the
  action; the route receives the principal.
- ``Annotated[Principal, require_platform()]``: the service token alone (no tenant), for the
  platform's own routes (``tenants:admin``, ``connections:admin``).
- ``dependencies=[public("reason")]``: a route that needs no authentication, with the reason.

Each dependency callable carries its action (``__tenantry_action__``) or reason
(``__tenantry_public__``); :func:`declared_access` reads them back, and a test fails on any route
without one. They also declare what the OpenAPI schema says of them
(:func:`tenantry.http.openapi.declare`): the credentials they take, the headers they read and the
errors authentication can answer, which :class:`~tenantry.http.openapi.Route` writes into each
operation. They read the headers themselves: declaring them costs nothing per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute

from tenantry.actions import TENANTS_ADMIN, is_action
from tenantry.db.engine import Database
from tenantry.http.credentials import (
    ANY_CREDENTIAL,
    DEVICE_ID,
    SERVICE_TOKEN_ALONE,
    SESSION_TOKEN_ALONE,
)
from tenantry.http.gate import bearer_credential, gate, provided
from tenantry.http.openapi import declare
from tenantry.http.problems import BACKEND
from tenantry.principal import Principal

__all__ = [
    "ACTION_ATTRIBUTE",
    "PUBLIC_ATTRIBUTE",
    "CurrentPrincipal",
    "DatabaseDep",
    "SessionCredential",
    "current_principal",
    "declared_access",
    "public",
    "require",
    "require_platform",
    "session_credential",
]

ACTION_ATTRIBUTE = "__tenantry_action__"
PUBLIC_ATTRIBUTE = "__tenantry_public__"

DatabaseDep = Annotated[Database, Depends(provided("database"))]


async def current_principal(request: Request) -> Principal:
    """The authenticated caller: a session token, an API key, or the service token with
    ``X-Tenant-ID``."""
    headers = request.headers
    credential = bearer_credential(
        headers.get("authorization"), "a session token, API key or service token"
    )
    principal = await gate(request).authenticate(request, credential, headers.get("x-tenant-id"))
    request.state.tenant_id = principal.tenant_id  # whose request it is, for its metrics
    return principal


# The credential checks 401; a valid one of a tenant that is not active, or without the action,
# 403; X-Tenant-ID naming another tenant or none 404, a malformed one 422. The credential is
# looked up in the database. A session token's validation reads X-Device-ID.
declare(
    current_principal,
    security=ANY_CREDENTIAL,
    headers=[DEVICE_ID],
    problems=(401, 403, 404, 422, *BACKEND),
)
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def session_credential(request: Request) -> str:
    """The session token of a route that checks that token itself (validation, step-up)."""
    return bearer_credential(request.headers.get("authorization"), "the session token")


# The token checks 401, its tenant not being active 403, a session id of another tenant in the
# path 404; the session is read from the database, with the client's X-Device-ID.
declare(
    session_credential,
    security=SESSION_TOKEN_ALONE,
    headers=[DEVICE_ID],
    problems=(401, 403, 404, *BACKEND),
)
SessionCredential = Annotated[str, Depends(session_credential)]


def _check(action: str) -> None:
    if not is_action(action):
        raise ValueError(f"{action!r} is not in tenantry.actions.ACTIONS")


def require(action: str) -> DependsParam:
    """A dependency: the authenticated caller, if it may perform ``action``; else 403."""
    _check(action)

    async def authorized(request: Request, principal: CurrentPrincipal) -> Principal:
        gate(request).authorize(principal, action)
        return principal

    authorized.__dict__[ACTION_ATTRIBUTE] = action
    authorized.__qualname__ = f"require({action!r})"
    return DependsParam(authorized)


def require_platform(action: str = TENANTS_ADMIN) -> DependsParam:
    """A dependency for platform routes: the service token alone, no tenant; checks ``action``."""
    _check(action)

    async def platform(request: Request) -> Principal:
        door = gate(request)
        principal = door.authenticate_platform(
            bearer_credential(request.headers.get("authorization"), "the service token")
        )
        door.authorize(principal, action)  # the platform may do everything: never 403
        return principal

    platform.__dict__[ACTION_ATTRIBUTE] = action
    declare(platform, security=SERVICE_TOKEN_ALONE, problems=(401,))
    platform.__qualname__ = f"require_platform({action!r})"
    return DependsParam(platform)


def public(reason: str) -> DependsParam:
    """A marker dependency for a route that needs no authentication, and why."""
    if not reason.strip():
        raise ValueError("a public route needs a reason")

    async def unauthenticated() -> None:
        return None

    unauthenticated.__dict__[PUBLIC_ATTRIBUTE] = reason
    return DependsParam(unauthenticated)


def _walk(dependant: Dependant) -> list[object]:
    calls: list[object] = [dependant.call] if dependant.call is not None else []
    for child in dependant.dependencies:
        calls.extend(_walk(child))
    return calls


def declared_access(route: APIRoute | Dependant) -> tuple[frozenset[str], frozenset[str]]:
    """(the actions a route requires, the reasons it is public), from its dependencies."""
    calls = _walk(route.dependant if isinstance(route, APIRoute) else route)
    actions = {a for c in calls if (a := getattr(c, ACTION_ATTRIBUTE, None)) is not None}
    reasons = {r for c in calls if (r := getattr(c, PUBLIC_ATTRIBUTE, None)) is not None}
    return frozenset(actions), frozenset(reasons)

"""What routers declare: who the caller is, and the action each route needs, or why not.

- ``Annotated[Principal, require("settings:read")]``: authenticates the caller
  (:func:`current_principal`) and has the app's :class:`~tenantry.http.gate.Gate` check the
  action; the route receives the principal.
- ``Annotated[Principal, require_platform()]``: the service token alone (no tenant), for the
  platform's own routes (``tenants:admin``, ``connections:admin``).
- ``dependencies=[public("reason")]``: a route that needs no authentication, with the reason.

Each dependency callable carries its action (``__tenantry_action__``) or reason
(``__tenantry_public__``); :func:`declared_access` reads them back, and a test fails on any route
without one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.dependencies.models import Dependant
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute

from tenantry.actions import TENANTS_ADMIN, is_action
from tenantry.db.engine import Database
from tenantry.http.gate import bearer_credential, gate, provided
from tenantry.principal import Principal

__all__ = [
    "ACTION_ATTRIBUTE",
    "PUBLIC_ATTRIBUTE",
    "CurrentPrincipal",
    "DatabaseDep",
    "current_principal",
    "declared_access",
    "public",
    "require",
    "require_platform",
]

ACTION_ATTRIBUTE = "__tenantry_action__"
PUBLIC_ATTRIBUTE = "__tenantry_public__"

DatabaseDep = Annotated[Database, Depends(provided("database"))]


async def current_principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_tenant_id: Annotated[str | None, Header(description="The tenant to act for")] = None,
) -> Principal:
    """The authenticated caller: a session token, an API key, or the service token with
    ``X-Tenant-ID``."""
    credential = bearer_credential(authorization, "a session token, API key or service token")
    return await gate(request).authenticate(request, credential, x_tenant_id)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


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

    async def platform(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Principal:
        door = gate(request)
        principal = door.authenticate_platform(
            bearer_credential(authorization, "the service token")
        )
        door.authorize(principal, action)
        return principal

    platform.__dict__[ACTION_ATTRIBUTE] = action
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

"""The FastAPI side of access control: every route declares the action it needs, or why not.

- ``Annotated[Principal, require("settings:read")]``: authenticates the caller
  (``tenantry.api.auth.current_principal``) and checks the action with the app's
  :class:`~tenantry.access.manager.AccessControl`; the route receives the principal.
- ``Annotated[Principal, require_platform()]``: the service token alone (no tenant), for the
  platform's own routes (``tenants:admin``, ``connections:admin``).
- ``dependencies=[public("reason")]``: a route that needs no authentication, with the reason.

Each dependency callable carries its action (``__tenantry_action__``) or reason
(``__tenantry_public__``); :func:`declared_access` reads them back, and a test fails on any route
without one. This module is imported while ``tenantry.api`` builds its routers, so it imports
``tenantry.api`` only inside the functions that routers call, never at the top (and, for that
reason, builds signatures from real objects rather than postponed annotations).
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute

from tenantry.access.actions import TENANTS_ADMIN, is_action
from tenantry.access.manager import AccessControl
from tenantry.access.principal import Principal, PrincipalKind
from tenantry.errors import StepUpRequired

__all__ = [
    "ACTION_ATTRIBUTE",
    "PLATFORM",
    "PUBLIC_ATTRIBUTE",
    "access_control",
    "declared_access",
    "public",
    "require",
    "require_platform",
]

ACTION_ATTRIBUTE = "__tenantry_action__"
PUBLIC_ATTRIBUTE = "__tenantry_public__"

#: The holder of the service token, acting for no tenant in particular.
PLATFORM = Principal("", "platform", PrincipalKind.SERVICE, frozenset({"platform"}))


def _current_principal() -> Callable[..., Awaitable[Principal]]:
    from tenantry.api.auth import current_principal  # noqa: PLC0415  (see the docstring)

    return current_principal


def access_control(request: Request) -> AccessControl:
    """The app's AccessControl (``state.tenantry.access``, made in the lifespan)."""
    access: AccessControl = request.app.state.tenantry.access
    return access


def require(action: str) -> DependsParam:
    """A dependency: the authenticated caller, if the policy allows ``action``; else 403."""
    if not is_action(action):
        raise ValueError(f"{action!r} is not in tenantry.access.actions.ACTIONS")
    source = _current_principal()

    async def authorized(
        request: Request, principal: Annotated[Principal, Depends(source)]
    ) -> Principal:
        access = access_control(request)
        access.check(principal, action)
        if access.needs_admin(action) and request.app.state.tenantry.sessions.needs_step_up(
            principal
        ):
            raise StepUpRequired(
                f"{action} needs a fresh passkey assertion: POST /sessions/<id>/step-up first"
            )
        return principal

    authorized.__dict__[ACTION_ATTRIBUTE] = action
    authorized.__qualname__ = f"require({action!r})"
    return DependsParam(authorized)


def require_platform(action: str = TENANTS_ADMIN) -> DependsParam:
    """A dependency for platform routes: the service token alone, no tenant; checks ``action``."""
    if not is_action(action):
        raise ValueError(f"{action!r} is not in tenantry.access.actions.ACTIONS")
    from tenantry.api.deps import ServiceToken  # noqa: PLC0415  (see the docstring)

    async def platform(request: Request, _: ServiceToken) -> Principal:
        access_control(request).check(PLATFORM, action)
        return PLATFORM

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

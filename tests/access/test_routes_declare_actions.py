"""Every route declares the action it needs (or why it is public); no route is forgotten.

The app is built, not started: its routes are what ``create_app`` includes, whatever routers
other domains add later.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Route

from tenantry.access import ACTIONS, Principal
from tenantry.actions import SETTINGS_READ
from tenantry.api import create_app
from tenantry.config import Settings
from tenantry.http import declared_access, public, require


@dataclass(frozen=True)
class Found:
    route: BaseRoute
    path: str
    methods: frozenset[str]
    dependant: Dependant | None


def routes_of(app: FastAPI) -> Iterator[Found]:
    """Every route as served, included routers flattened (FastAPI >= 0.16x includes lazily)."""
    iterate = getattr(routing, "iter_route_contexts", None)
    contexts = iterate(app.routes) if iterate is not None else app.routes
    for context in contexts:
        route = getattr(context, "original_route", context)
        effective = getattr(context, "_route_context", None)
        dependant = getattr(effective, "dependant", None) or getattr(route, "dependant", None)
        yield Found(
            route,
            getattr(context, "path", None) or getattr(route, "path", repr(route)),
            frozenset(getattr(route, "methods", None) or ()),
            dependant,
        )


def docs_paths(app: FastAPI) -> set[str]:
    """FastAPI's own documentation routes: public, they describe the API and hold no data."""
    urls = (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    return {url for url in urls if url}


def undeclared(app: FastAPI) -> list[str]:
    """Each route without a declared action or public reason, or with an unknown action."""
    problems = []
    for found in routes_of(app):
        problems.extend(_check(app, found))
    return problems


def _check(app: FastAPI, found: Found) -> list[str]:
    name = f"{sorted(found.methods)} {found.path}"
    if isinstance(found.route, APIRoute) and found.dependant is not None:
        actions, reasons = declared_access(found.dependant)
        if not actions and not reasons:
            return [f"{name}: declares no action (require(...)) and is not public(...)"]
        if actions and reasons:
            return [f"{name}: both public and requiring {sorted(actions)}"]
        unknown = sorted(actions - set(ACTIONS))
        return [f"{name}: unknown actions {unknown}"] if unknown else []
    if isinstance(found.route, Route) and found.path in docs_paths(app):
        return []
    return [f"{type(found.route).__name__} {name}: not an access-checked route"]


def test_every_route_declares_an_action_or_is_public(settings: Settings) -> None:
    app = create_app(settings)
    assert len([f for f in routes_of(app) if isinstance(f.route, APIRoute)]) >= 10
    assert undeclared(app) == []


def test_the_known_routes_declare_what_they_need(settings: Settings) -> None:
    app = create_app(settings)
    declared = {
        (method, found.path): declared_access(found.dependant)
        for found in routes_of(app)
        if found.dependant is not None
        for method in found.methods
    }
    assert declared["GET", "/settings/{key}"][0] == {"settings:read"}
    assert declared["PUT", "/settings/{key}"][0] == {"settings:write"}
    assert declared["DELETE", "/settings/{key}"][0] == {"settings:write"}
    assert declared["POST", "/tenants"][0] == {"tenants:admin"}
    assert declared["PATCH", "/tenants/{tenant_id}"][0] == {"tenants:admin"}
    assert declared["GET", "/cache/stats"][0] == {"cache:read"}
    assert declared["GET", "/connections/health"][0] == {"connections:admin"}
    assert declared["GET", "/health/live"][1]
    assert declared["GET", "/health/ready"][1]
    assert declared["GET", "/metrics"] == ({"metrics:read"}, frozenset())


def test_the_check_catches_a_forgotten_route() -> None:
    app = FastAPI()
    router = APIRouter()

    @router.get("/forgotten")
    async def forgotten() -> None: ...

    @router.get("/declared")
    async def declared(_: Annotated[Principal, require(SETTINGS_READ)]) -> None: ...

    @router.get("/open", dependencies=[public("a probe")])
    async def open_route() -> None: ...

    @router.get("/both", dependencies=[public("oops")])
    async def both(_: Annotated[Principal, require(SETTINGS_READ)]) -> None: ...

    async def unrelated() -> None: ...

    @router.get("/other-dependency")
    async def other(_: Annotated[None, Depends(unrelated)]) -> None: ...

    app.include_router(router)
    problems = undeclared(app)
    assert len(problems) == 3
    assert any("/forgotten" in p for p in problems)
    assert any("/both" in p for p in problems)
    assert any("/other-dependency" in p for p in problems)


def test_an_unknown_action_cannot_be_declared() -> None:
    with pytest.raises(ValueError, match="not in"):
        require("settings:destroy")
    with pytest.raises(ValueError, match="reason"):
        public(" ")

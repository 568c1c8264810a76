"""What a route says of itself in the OpenAPI schema, declared once where it is decided.

The dependencies of :mod:`tenantry.http.deps` decide who may call a route; :func:`declare` puts
on each of them the credentials it takes (security requirements), the headers it reads and the
errors it can answer. :class:`Route`, the route class of every router, gathers these from its
dependencies and adds the errors every route of its kind can answer (validation, a body, a change
in the database), so each operation of the schema is complete without any route repeating them.
Nothing here runs per request: the declarations are read once, when the route is made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute

from tenantry.http.credentials import SCHEMES, Requirements
from tenantry.http.problems import BACKEND, Problem, problems

__all__ = ["Route", "components", "declare", "declared_problems"]

_SECURITY = "__tenantry_security__"
_HEADERS = "__tenantry_headers__"
_PROBLEMS = "__tenantry_problems__"
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def declare(
    call: Callable[..., Any],
    *,
    security: Requirements | None = None,
    headers: Iterable[dict[str, Any]] = (),
    problems: Iterable[int] = (),
) -> None:
    """Declare what the dependency ``call`` checks: the credentials it takes (``security``), the
    headers it reads besides them, and the error statuses it can answer."""
    if security is not None:
        call.__dict__[_SECURITY] = security
    call.__dict__[_HEADERS] = tuple(headers)
    call.__dict__[_PROBLEMS] = frozenset(problems)


def _walk(dependant: Dependant) -> list[Dependant]:
    found = [dependant]
    for child in dependant.dependencies:
        found.extend(_walk(child))
    return found


def _declared(route: APIRoute, attribute: str) -> list[Any]:
    return [
        value
        for dependant in _walk(route.dependant)
        if (value := getattr(dependant.call, attribute, None)) is not None
    ]


def declared_problems(route: APIRoute) -> frozenset[int]:
    """Every error status ``route`` can answer, whatever it does besides:

    - those its dependencies declare (authentication) and those of its own ``responses``;
    - 422 if it reads parameters or a body (validation), 400 and 413 if it reads a body;
    - 409 and 410 if it changes something (POST, PUT, PATCH, DELETE) in the database (it
      declares :data:`~tenantry.http.problems.BACKEND`): a write a conflicting one rolled back,
      and an audited change of a tenant whose keys were destroyed (every change is audited,
      sealed with the tenant's keys).
    """
    statuses = {status for declared in _declared(route, _PROBLEMS) for status in declared}
    statuses |= {int(code) for code in route.responses if str(code).isdigit()}
    if route.body_field is not None:
        statuses |= {400, 413, 422}
    if any(d.path_params or d.query_params for d in _walk(route.dependant)):
        statuses.add(422)
    if (route.methods or set()) & _WRITES and statuses.issuperset(BACKEND):
        statuses |= {409, 410}
    return frozenset(s for s in statuses if s >= 400)


class Route(APIRoute):
    """An API route whose operation declares what its dependencies and its kind say: their
    credentials and headers, and every error :func:`declared_problems` finds, besides its own
    ``responses``. Routers are made with ``APIRouter(route_class=Route)``."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.responses = {**problems(*sorted(declared_problems(self))), **self.responses}
        extra: dict[str, Any] = {}
        requirements = _declared(self, _SECURITY)
        if requirements:
            extra["security"] = requirements[0]  # the outermost dependency's decides
        headers = {h["name"]: h for declared in _declared(self, _HEADERS) for h in declared}
        if headers:
            extra["parameters"] = list(headers.values())
        if extra:
            self.openapi_extra = {**extra, **(self.openapi_extra or {})}


def components() -> dict[str, Any]:
    """The components every route refers to: the security schemes and the ``Problem`` schema."""
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    nested: dict[str, Any] = problem.pop("$defs", {})
    return {
        "securitySchemes": jsonable_encoder(SCHEMES, by_alias=True, exclude_none=True),
        "schemas": {**nested, "Problem": problem},
    }

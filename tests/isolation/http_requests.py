"""Every route of an app, and a request for it naming whichever ids an attack wants.

:func:`discover` finds each method of each route the app serves, with its declared access
(``tenantry.http``: ``require``, ``require_platform``, ``public``) and its parameters and body
from the OpenAPI schema. :func:`build` makes the route's request: path and query parameters and
a minimal valid body generated from that schema, where every parameter or field whose name
names an id (:func:`kind_of`: ``tenant_id``, ``session_id``, ``user_id``, ``key`` ...) gets the
id of that kind it is given. A value the generator cannot make fails loudly, never silently.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import Phase, find, settings
from hypothesis import strategies as st

from tenantry.actions import TENANTS_ADMIN
from tenantry.http import declared_access, require_platform
from tests.access.test_routes_declare_actions import routes_of

from .http_world import Credential, IdKind

__all__ = ["NO_BODY", "Call", "Endpoint", "build", "discover", "kind_of", "sample"]

Access = Literal["tenant", "platform", "public"]
NO_BODY: Any = object()
#: Every dependency made by ``require_platform`` runs this code (closures share it).
_PLATFORM_CODE = require_platform(TENANTS_ADMIN).dependency.__code__  # type: ignore[union-attr]


@dataclass(frozen=True)
class Endpoint:
    """One method of one route, as the app serves it."""

    method: str
    path: str
    access: Access
    actions: frozenset[str] = field(compare=False)
    parameters: tuple[dict[str, Any], ...] = field(repr=False, compare=False)
    body: dict[str, Any] | None = field(repr=False, compare=False)
    defs: Mapping[str, Any] = field(repr=False, compare=False)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def signed(self) -> bool:
        """Its body carries a signed WebAuthn response (``credential``), which no generator can
        forge: its own requests cannot succeed, so it has no control."""
        body = _resolve(self.body or {}, self.defs)
        return "credential" in body.get("required", ())

    @property
    def kinds(self) -> set[IdKind]:
        """The kinds of ids its parameters and body fields name."""
        names = [p["name"] for p in self.parameters]
        if self.body is not None:
            names += _fields(self.body, self.defs)
        return {kind for name in names if (kind := kind_of(name)) is not None}


def _fields(schema: dict[str, Any], defs: Mapping[str, Any], depth: int = 0) -> list[str]:
    """The names of the properties of ``schema``, nested ones included."""
    schema = _resolve(schema, defs)
    if depth > 5:
        return []
    names = []
    for name, sub in schema.get("properties", {}).items():
        names += [name, *_fields(sub, defs, depth + 1)]
    for combinator in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(combinator, ()):
            names += _fields(option, defs, depth + 1)
    return names


def _calls(dependant: Any) -> Iterator[Any]:
    if dependant.call is not None and hasattr(dependant.call, "__code__"):
        yield dependant.call
    for child in dependant.dependencies:
        yield from _calls(child)


def _access(dependant: Any) -> Access:
    actions, reasons = declared_access(dependant)
    if reasons and not actions:
        return "public"
    platform = any(call.__code__ is _PLATFORM_CODE for call in _calls(dependant))
    return "platform" if platform else "tenant"


def discover(app: FastAPI) -> list[Endpoint]:
    """Every method of every API route the app serves, with its access and its schema."""
    schema = app.openapi()
    defs = schema.get("components", {}).get("schemas", {})
    found = []
    for route in routes_of(app):
        if not isinstance(route.route, APIRoute) or route.dependant is None:
            continue  # FastAPI's documentation pages (no data; the declaration test)
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            operation = schema["paths"].get(route.path, {}).get(method.lower())
            if operation is None:
                raise AssertionError(
                    f"{method} {route.path} is served but not in the OpenAPI schema, from which "
                    "the HTTP isolation suite makes its requests"
                )
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            found.append(
                Endpoint(
                    method,
                    route.path,
                    _access(route.dependant),
                    declared_access(route.dependant)[0],
                    tuple(p for p in operation.get("parameters", ()) if p["in"] != "header"),
                    body["schema"] if body else None,
                    defs,
                )
            )
    return found


def kind_of(name: str) -> IdKind | None:
    """The kind of id a parameter or field names, by its name."""
    name = name.lower().replace("-", "_")
    if name == "key":
        return "setting"
    for suffix, kind in (
        ("tenant_id", "tenant"),
        ("session_id", "session"),
        ("_session", "session"),
        ("key_id", "key"),
        ("user_id", "user"),
        ("principal_id", "user"),
        ("challenge_id", "challenge"),
        ("record_id", "metadata"),
        ("subject", "schema"),
        ("schema_name", "schema"),
        ("rule_name", "alert_rule"),
        ("receiver_name", "receiver"),
        ("fixture_id", "fixture"),
        ("silence_id", "silence"),
        ("model_name", "model"),
        ("job_id", "job"),
        ("workflow_id", "workflow"),
    ):
        if name == suffix.lstrip("_") or name.endswith(suffix):
            return kind  # type: ignore[return-value]
    return None


def _resolve(schema: dict[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**defs[schema["$ref"].rsplit("/", 1)[-1]], **rest}
    return schema


@functools.cache
def _matching(pattern: str, low: int, high: int) -> str:
    """A short string of ``low``..``high`` characters that ``pattern`` matches."""
    for candidate in ("probe", "probe-probe-probe-probe", "0"):
        if low <= len(candidate) <= high and re.search(pattern, candidate):
            return candidate
    strategy = st.from_regex(pattern, fullmatch=True).filter(lambda s: low <= len(s) <= high)
    quick = settings(database=None, phases=[Phase.generate], derandomize=True)
    found: str = find(strategy, lambda _: True, settings=quick)
    return found


def sample(
    schema: dict[str, Any], name: str, ids: Mapping[IdKind, str], defs: Mapping[str, Any]
) -> Any:
    """A small valid value of ``schema``; the id of ``ids`` that ``name`` names, if any.

    Objects get their required properties, and those of their optional ones that name an id.
    """
    kind = kind_of(name)
    if kind is not None and kind in ids:
        return ids[kind]
    schema = _resolve(schema, defs)
    if "const" in schema:
        return schema["const"]
    if schema.get("examples"):  # a documented example is a valid value
        return schema["examples"][0]
    if "enum" in schema:
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            options = [o for o in schema[combinator] if o.get("type") != "null"]
            return sample(options[0], name, ids, defs)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged |= _resolve(part, defs)
        return sample(merged, name, ids, defs)
    kind_of_value = schema.get("type")
    if kind_of_value == "string":
        if schema.get("format") == "date-time":
            return datetime.now(UTC).isoformat()
        low, high = schema.get("minLength", 1), schema.get("maxLength", 200)
        return _matching(schema.get("pattern", ""), low, high)
    if kind_of_value in ("integer", "number"):
        low, high = schema.get("minimum", 0), schema.get("maximum", 2**31)
        return 1 if low <= 1 <= high else low  # 1, not 0: a first entry, a tree of one
    if kind_of_value == "boolean":
        return False
    if kind_of_value == "array":
        return [sample(schema.get("items", {}), name, ids, defs)] * schema.get("minItems", 0)
    if kind_of_value == "object" or "properties" in schema:
        required = set(schema.get("required", ()))
        return {
            prop: sample(sub, prop, ids, defs)
            for prop, sub in schema.get("properties", {}).items()
            if prop in required or _names(prop, ids)
        }
    if kind_of_value is None:
        return "probe"  # any JSON value
    raise TypeError(
        f"tests/isolation/http_requests.py cannot make a value of {schema!r} for {name!r}: "
        "teach sample() this schema"
    )


@dataclass(frozen=True)
class Call:
    """One request. Shown with the credential's name in place of its secret."""

    method: str
    path: str
    query: dict[str, Any]
    body: Any
    credential: Credential

    async def send(self, client: httpx.AsyncClient) -> httpx.Response:
        """The answer; an exception the app raises is a 500 (the ASGI transport re-raises)."""
        kwargs: dict[str, Any] = {"params": self.query, "headers": self.credential.headers}
        if self.body is not NO_BODY:
            kwargs["json"] = self.body
        try:
            return await client.request(self.method, self.path, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any exception of the app is reported as a 500
            return httpx.Response(500, text=f"the app raised {exc!r}")

    def sent(self) -> str:
        """Everything the request sends: a marker in it was not leaked by the answer."""
        body = "" if self.body is NO_BODY else json.dumps(self.body)
        values = " ".join(self.credential.headers.values())
        return f"{self.path} {json.dumps(self.query)} {body} {values}"

    def __str__(self) -> str:
        query = "?" + "&".join(f"{k}={v}" for k, v in self.query.items()) if self.query else ""
        body = "" if self.body is NO_BODY else f" {json.dumps(self.body)}"
        return f"{self.method} {self.path}{query}{body} [{self.credential.name}]"


def _names(name: str, ids: Mapping[IdKind, str]) -> bool:
    kind = kind_of(name)
    return kind is not None and kind in ids


def build(endpoint: Endpoint, ids: Mapping[IdKind, str], credential: Credential) -> Call:
    """The request of ``endpoint`` naming ``ids``, sent with ``credential``."""
    path, query = endpoint.path, {}
    for parameter in endpoint.parameters:
        name, schema = parameter["name"], parameter.get("schema", {})
        if parameter["in"] == "path":
            value = str(sample(schema, name, ids, endpoint.defs))
            placeholder = re.compile(r"\{" + re.escape(name) + r"(:[^}]*)?\}")
            path = placeholder.sub(value.replace("\\", "\\\\"), path)  # a literal replacement
        elif parameter.get("required") or _names(name, ids):
            query[name] = sample(schema, name, ids, endpoint.defs)
    body = NO_BODY if endpoint.body is None else sample(endpoint.body, "", ids, endpoint.defs)
    return Call(endpoint.method, path, query, body, credential)

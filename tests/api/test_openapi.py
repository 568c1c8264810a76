"""The OpenAPI schema says what the service does: the credentials each route takes, the headers it
reads, and every error it answers, as the problem+json it really is."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from tenantry.api import create_app
from tenantry.config import load_settings
from tenantry.http import PROBLEM_JSON, Problem, session_credential
from tests.access.test_routes_declare_actions import routes_of
from tests.conftest import TOKEN, NewTenant
from tests.isolation.http_requests import Endpoint, discover

APP = create_app(load_settings(api_token="collect-only"))
SPEC: dict[str, Any] = APP.openapi()
ENDPOINTS = discover(APP)
TENANT_CREDENTIALS = [{"SessionToken": []}, {"ApiKey": []}, {"ServiceToken": [], "TenantId": []}]
PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def operation(endpoint: Endpoint) -> dict[str, Any]:
    found: dict[str, Any] = SPEC["paths"][endpoint.path][endpoint.method.lower()]
    return found


def checks_a_session_token(endpoint: Endpoint) -> bool:
    """A public route that checks the session token it is sent (validation, step-up)."""
    for route in routes_of(APP):
        if route.path == endpoint.path and endpoint.method in route.methods:
            assert isinstance(route.route, APIRoute)
            assert route.dependant is not None
            return _depends_on(route.dependant, session_credential)
    raise AssertionError(f"{endpoint} is not served")


def _depends_on(dependant: Any, call: object) -> bool:
    return dependant.call is call or any(_depends_on(d, call) for d in dependant.dependencies)


def test_the_credentials_are_security_schemes() -> None:
    schemes = SPEC["components"]["securitySchemes"]
    for name in ("SessionToken", "ApiKey", "ServiceToken"):
        assert schemes[name]["type"] == "http"
        assert schemes[name]["scheme"] == "bearer"  # Swagger UI's Authorize sends it as such
    assert schemes["TenantId"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Tenant-ID",
        "description": schemes["TenantId"]["description"],
    }


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_each_operation_requires_the_credentials_its_route_takes(endpoint: Endpoint) -> None:
    security = operation(endpoint).get("security")
    if endpoint.access == "tenant":  # require(action): any credential, the service token with
        assert security == TENANT_CREDENTIALS  # the tenant it acts for
    elif endpoint.access == "platform":  # require_platform(): the service token alone
        assert security == [{"ServiceToken": []}]
    elif checks_a_session_token(endpoint):
        assert security == [{"SessionToken": []}]
    else:
        assert security is None, "a public route takes no credential"


#: The dashboard's page, its two files, and signing in (the credential in the body) and out.
DASHBOARD = {
    "GET /dashboard",
    "GET /dashboard/static/dashboard.js",
    "GET /dashboard/static/dashboard.css",
    "POST /dashboard/sign-in",
    "POST /dashboard/sign-out",
}


def test_the_public_routes_are_the_probes_and_the_session_checks() -> None:
    public = {str(e) for e in ENDPOINTS if "security" not in operation(e)}
    assert public == {"GET /health", "GET /health/live", "GET /health/ready", *DASHBOARD}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_a_route_that_takes_a_credential_declares_401(endpoint: Endpoint) -> None:
    responses = operation(endpoint)["responses"]
    if str(endpoint) == "POST /dashboard/sign-in":  # the credential is its body, not a header
        assert responses["401"]["content"] == PROBLEM
        return
    if "security" not in operation(endpoint):
        assert "401" not in responses
        return
    assert responses["401"]["content"] == PROBLEM
    assert responses["401"]["headers"]["WWW-Authenticate"]["schema"]["const"] == "Bearer"
    if endpoint.access == "tenant":  # another tenant's (X-Tenant-ID), not allowed, malformed
        assert {"403", "404", "422", "429", "503"} <= set(responses)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_every_error_is_declared_as_problem_json(endpoint: Endpoint) -> None:
    responses = operation(endpoint)["responses"]
    errors = {code: answer for code, answer in responses.items() if int(code) >= 400}
    if str(endpoint) in {"GET /health", "GET /health/ready"}:  # the probe's own when not ready
        assert set(errors) == {"503"}
        return
    for code, answer in errors.items():
        assert answer["content"] == PROBLEM, code
    if endpoint.body is not None or endpoint.parameters:
        assert "422" in errors  # validation
    if endpoint.body is not None:
        assert {"400", "413"} <= set(errors)  # unreadable, too large


def test_fastapis_validation_error_is_not_declared() -> None:
    """The service answers 422 as problem+json (``errors`` names each field), never FastAPI's
    ``{"detail": [...]}``."""
    text = json.dumps(SPEC)
    assert "HTTPValidationError" not in text
    assert SPEC["components"]["schemas"]["Problem"]["required"] == [
        "title",
        "status",
        "detail",
        "instance",
    ]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_a_route_that_takes_a_session_token_declares_x_device_id(endpoint: Endpoint) -> None:
    security = operation(endpoint).get("security") or []
    headers = {p["name"] for p in operation(endpoint).get("parameters", ()) if p["in"] == "header"}
    if {"SessionToken": []} in security:
        assert "X-Device-ID" in headers
    else:
        assert "X-Device-ID" not in headers


async def test_the_schema_and_its_docs_are_public(client: httpx.AsyncClient) -> None:
    served = await client.get("/openapi.json")
    assert served.status_code == 200
    assert served.json()["components"]["securitySchemes"] == SPEC["components"]["securitySchemes"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text
    assert '"persistAuthorization": true' in docs.text  # Authorize survives a reload


async def test_the_answers_are_problems_of_the_declared_schema(
    client: httpx.AsyncClient, new_tenant: NewTenant
) -> None:
    tenant = {**TOKEN, "X-Tenant-ID": (await new_tenant("oa")).id}
    answers = {
        401: await client.get("/settings"),
        404: await client.get("/settings/none", headers=tenant),
        405: await client.post("/settings/key", headers=TOKEN),
        422: await client.put("/settings/k", headers=tenant, json={"no": "value"}),
        400: await client.put(
            "/settings/k",
            headers={**tenant, "Content-Type": "application/json"},
            content=b'{"value": "\xff"}',
        ),
    }
    for status, answer in answers.items():
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == PROBLEM_JSON
        problem = Problem.model_validate_json(answer.content)
        assert problem.status == status
        assert set(answer.json()) <= set(Problem.model_fields)
    assert Problem.model_validate_json(answers[422].content).errors


async def test_405_names_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    """RFC 9110: a 405 says which methods the resource takes; ``/settings/{key}`` has three
    routes, and Starlette alone names the first one's."""
    answer = await client.post("/settings/key", headers=TOKEN)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "DELETE, GET, PUT"
    assert (await client.delete("/tenants", headers=TOKEN)).headers["allow"] == "GET, POST"

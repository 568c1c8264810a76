"""schemathesis over the app's OpenAPI schema, with valid credentials: no answer is a 5xx, and
every answer is one the schema declares (status, content type, body, headers).

Each operation is a test; schemathesis makes its requests (from the schema's examples, its
constraints' boundaries, and at random; valid and invalid ones), which go in-process to the app
started on a database of its own, with the service token acting for a tenant of its own
(``X-Tenant-ID``) or, where a route takes a session token only, a session of that tenant.
Generation is derandomized (the same requests on every run) and bounded for CI.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from tenantry.api import create_app
from tenantry.config import load_settings
from tenantry.db.embedded import EmbeddedPostgres
from tests.conftest import TOKEN, embedded_settings

#: Random requests per operation, besides those of the schema's examples and constraints'
#: boundaries (about 1,500 requests in all, some 30 s of CPU).
MAX_EXAMPLES = 10
#: What each answer is checked for. Left out: the checks that send requests of their own
#: (``ignored_auth``, the stateful ones), and ``positive_data_acceptance``: the service answers 422
#: to values valid in form but not in meaning (a tree size beyond the log, a passkey assertion
#: that does not verify, a name of blanks), which no schema can say; 422 is declared.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "unsupported_method",
    "allow_header_conformance",
    "missing_required_header",
)
CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            # The credentials are the test's, valid ones (missing and wrong ones: test_service,
            # the isolation suite); unknown query parameters are ignored, as the schema allows.
            "with-security-parameters": False,
            "allow-extra-parameters": False,
        },
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            "enabled": False,
            **{name: {"enabled": True} for name in CHECKS},
            # a body past TENANTRY_MAX_BODY_BYTES is rejected before it is read: 413, declared
            # (a string of maxLength + 1 control characters is 6 bytes a character in JSON)
            "negative_data_rejection": {
                "enabled": True,
                "expected-statuses": [
                    400,
                    401,
                    403,
                    404,
                    405,
                    406,
                    409,
                    413,
                    415,
                    422,
                    428,
                    429,
                    "5XX",
                ],
            },
        },
    }
)
settings.register_profile(
    "openapi",
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
SCHEMA = schemathesis.openapi.from_dict(
    create_app(load_settings(api_token="collect-only")).openapi(), config=CONFIG
)


@dataclass(frozen=True)
class World:
    client: httpx.AsyncClient
    service: dict[str, str]  # the service token acting for the tenant
    session: dict[str, str]  # a session of a user of the tenant


@pytest.fixture(scope="module")
async def world(embedded_server: EmbeddedPostgres) -> AsyncIterator[World]:
    """The app on a database of its own, a tenant, and its credentials."""
    app = create_app(await embedded_settings(embedded_server, "openapi"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tenantry") as client:
            tenant = f"fz-{uuid.uuid4().hex[:12]}"
            body = {"id": tenant, "display_name": "Fuzzed"}
            created = await client.post("/tenants", json=body, headers=TOKEN)
            assert created.status_code == 201, created.text
            service = {**TOKEN, "X-Tenant-ID": tenant}
            body = {"user_id": "fuzz-user"}
            opened = await client.post("/sessions/create", json=body, headers=service)
            assert opened.status_code == 201, opened.text
            session = {"Authorization": f"Bearer {opened.json()['token']}"}
            yield World(client, service, session)


def _credentials(case: schemathesis.Case, world: World) -> dict[str, str]:
    security = case.operation.definition.raw.get("security", [])
    if security == [{"SessionToken": []}]:
        return world.session
    return world.service


async def _send(case: schemathesis.Case, world: World) -> httpx.Response:
    kwargs: dict[str, Any] = case.as_transport_kwargs(
        base_url="http://tenantry", headers=_credentials(case, world)
    )
    kwargs.pop("cookies", None)
    if isinstance(kwargs.get("data"), bytes | str):
        kwargs["content"] = kwargs.pop("data")
    return await world.client.request(**kwargs)


@SCHEMA.parametrize()
@settings(settings.get_profile("openapi"))
async def test_every_answer_is_declared_and_none_is_a_server_error(
    case: schemathesis.Case, world: World
) -> None:
    response = await _send(case, world)
    case.validate_response(response)

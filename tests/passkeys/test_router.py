"""The passkeys routes over HTTP: both ceremonies, who may act for whom, and fuzzed bodies."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantry.http import current_principal
from tenantry.principal import Principal, PrincipalKind
from tests.conftest import TOKEN
from tests.passkeys.authenticator import SoftAuthenticator, b64url
from tests.passkeys.conftest import ORIGIN

App = tuple[FastAPI, httpx.AsyncClient]


async def make_tenant(client: httpx.AsyncClient) -> str:
    tenant_id = f"pkh-{uuid.uuid4().hex[:10]}"
    response = await client.post(
        "/tenants", json={"id": tenant_id, "display_name": "Label"}, headers=TOKEN
    )
    assert response.status_code == 201, response.text
    return tenant_id


def as_tenant(tenant_id: str) -> dict[str, str]:
    return {**TOKEN, "X-Tenant-ID": tenant_id}


async def register(
    client: httpx.AsyncClient, tenant_id: str, user_id: str, auth: SoftAuthenticator
) -> dict[str, Any]:
    headers = as_tenant(tenant_id)
    options = await client.post(
        "/passkeys/register/options",
        json={"user_id": user_id, "user_name": "ada@label.test"},
        headers=headers,
    )
    assert options.status_code == 200, options.text
    body = options.json()
    verified = await client.post(
        "/passkeys/register/verify",
        json={
            "user_id": user_id,
            "challenge_id": body["challenge_id"],
            "credential": auth.create(body["options"]),
        },
        headers=headers,
    )
    assert verified.status_code == 201, verified.text
    result: dict[str, Any] = verified.json()
    return result


async def authentication_options(
    client: httpx.AsyncClient, tenant_id: str, user_id: str
) -> dict[str, Any]:
    response = await client.post(
        "/passkeys/authenticate/options", json={"user_id": user_id}, headers=as_tenant(tenant_id)
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_both_ceremonies_over_http(passkeys_app: App) -> None:
    _, client = passkeys_app
    tenant_id = await make_tenant(client)
    auth = SoftAuthenticator(ORIGIN)
    created = await register(client, tenant_id, "u-1", auth)
    assert created["user_id"] == "u-1"
    assert "public_key" not in created

    options = await authentication_options(client, tenant_id, "u-1")
    assert options["options"]["userVerification"] == "required"
    body = {
        "user_id": "u-1",
        "challenge_id": options["challenge_id"],
        "credential": auth.get(options["options"]),
    }
    verified = await client.post(
        "/passkeys/authenticate/verify", json=body, headers=as_tenant(tenant_id)
    )
    assert verified.status_code == 200, verified.text
    assertion = verified.json()
    assert assertion["credential_id"] == created["credential_id"]
    assert (assertion["tenant_id"], assertion["new_sign_count"]) == (tenant_id, 1)

    replay = await client.post(
        "/passkeys/authenticate/verify", json=body, headers=as_tenant(tenant_id)
    )
    assert replay.status_code == 401
    assert "already used" in replay.json()["detail"]


async def test_refusals_over_http(passkeys_app: App) -> None:
    _, client = passkeys_app
    tenant_id = await make_tenant(client)
    headers = as_tenant(tenant_id)
    no_user = await client.post(
        "/passkeys/register/options", json={"user_name": "ada"}, headers=headers
    )
    assert no_user.status_code == 422
    assert "user_id is required" in no_user.json()["detail"]
    anonymous = await client.post(
        "/passkeys/register/options", json={"user_id": "u-1", "user_name": "ada"}
    )
    assert anonymous.status_code == 401
    nobody = await client.post(
        "/passkeys/authenticate/options", json={"user_id": "u-1"}, headers=headers
    )
    assert nobody.status_code == 404
    auth = SoftAuthenticator(ORIGIN)
    await register(client, tenant_id, "u-1", auth)
    options = await authentication_options(client, tenant_id, "u-1")
    malformed = await client.post(
        "/passkeys/authenticate/verify",
        json={"user_id": "u-1", "challenge_id": options["challenge_id"], "credential": {"a": 1}},
        headers=headers,
    )
    assert malformed.status_code == 422
    other_tenant = await make_tenant(client)
    await register(client, other_tenant, "u-1", SoftAuthenticator(ORIGIN))
    foreign = await authentication_options(client, other_tenant, "u-1")
    probe = await client.post(
        "/passkeys/authenticate/verify",
        json={
            "user_id": "u-1",
            "challenge_id": foreign["challenge_id"],
            "credential": auth.get(foreign["options"], credential_id=next(iter(auth.credentials))),
        },
        headers=as_tenant(other_tenant),
    )
    assert probe.status_code == 401
    assert probe.json()["detail"] == "this passkey is not registered for this user"


@contextmanager
def acting_as(app: FastAPI, principal: Principal) -> Iterator[None]:
    async def fixed() -> Principal:
        return principal

    app.dependency_overrides[current_principal] = fixed
    try:
        yield
    finally:
        app.dependency_overrides.pop(current_principal, None)


async def test_a_session_acts_for_itself_with_challenges_bound_to_it(passkeys_app: App) -> None:
    app, client = passkeys_app
    tenant_id = await make_tenant(client)
    auth = SoftAuthenticator(ORIGIN)
    alice = Principal(tenant_id, "alice", PrincipalKind.SESSION, frozenset({"viewer"}), "s-1")
    with acting_as(app, alice):
        options = (
            await client.post("/passkeys/register/options", json={"user_name": "alice"})
        ).json()
        created = await client.post(
            "/passkeys/register/verify",
            json={
                "challenge_id": options["challenge_id"],
                "credential": auth.create(options["options"]),
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["user_id"] == "alice"
        for_bob = await client.post(
            "/passkeys/register/options", json={"user_id": "bob", "user_name": "bob"}
        )
        assert for_bob.status_code == 403
        request = (await client.post("/passkeys/authenticate/options", json={})).json()
    body = {"challenge_id": request["challenge_id"], "credential": auth.get(request["options"])}
    other_session = Principal(
        tenant_id, "alice", PrincipalKind.SESSION, frozenset({"viewer"}), "s-2"
    )
    with acting_as(app, other_session):
        refused = await client.post("/passkeys/authenticate/verify", json=body)
    assert refused.status_code == 401
    assert "another session" in refused.json()["detail"]
    with acting_as(app, alice):
        request = (await client.post("/passkeys/authenticate/options", json={})).json()
        body = {"challenge_id": request["challenge_id"], "credential": auth.get(request["options"])}
        verified = await client.post("/passkeys/authenticate/verify", json=body)
    assert verified.status_code == 200, verified.text


# -- fuzzing: no body makes the verify routes answer 500 --------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
B64 = st.binary(max_size=200).map(b64url) | st.text(max_size=40)


def _mutate(template: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    body = copy.deepcopy(template)
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


FIELDS = [
    ("id",),
    ("rawId",),
    ("type",),
    ("response",),
    ("response", "clientDataJSON"),
    ("response", "attestationObject"),
    ("response", "authenticatorData"),
    ("response", "signature"),
    ("response", "userHandle"),
    ("response", "transports"),
    ("authenticatorAttachment",),
]

_state: dict[str, Any] = {}


async def _templates(client: httpx.AsyncClient) -> dict[str, Any]:
    """A tenant with a registered user, and a valid response of each kind to mutate."""
    if not _state:
        tenant_id = await make_tenant(client)
        auth = SoftAuthenticator(ORIGIN)
        await register(client, tenant_id, "fuzz", auth)
        options = await authentication_options(client, tenant_id, "fuzz")
        _state.update(
            tenant=tenant_id,
            auth=auth,
            register=auth.create(
                {"rp": {"id": "localhost"}, "user": {"id": b64url(b"x")}, "challenge": "AA"}
            ),
            authenticate=auth.get(options["options"]),
        )
    return _state


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(["register", "authenticate"]),
    mutation=st.tuples(st.sampled_from(FIELDS), B64 | JSON),
    raw=st.none() | JSON,
    challenge_id=st.none() | st.text(max_size=70),
)
async def test_fuzzed_verify_bodies_never_500(
    passkeys_app: App,
    kind: str,
    mutation: tuple[tuple[str, ...], object],
    raw: object,
    challenge_id: str | None,
) -> None:
    """A valid response with one field replaced, or any JSON, against a fresh or made-up
    challenge id: 401, 409 or 422, never a 500 (nor a success)."""
    _, client = passkeys_app
    field, value = mutation
    fresh_challenge = challenge_id is None
    state = await _templates(client)
    headers = as_tenant(state["tenant"])
    if fresh_challenge:
        extra = {"user_name": "fuzz"} if kind == "register" else {}
        issued = await client.post(
            f"/passkeys/{kind}/options", json={"user_id": "fuzz", **extra}, headers=headers
        )
        challenge_id = issued.json()["challenge_id"]
    credential = raw if raw is not None else _mutate(state[kind], field, value)
    response = await client.post(
        f"/passkeys/{kind}/verify",
        json={"user_id": "fuzz", "challenge_id": challenge_id, "credential": credential},
        headers=headers,
    )
    assert response.status_code in (401, 409, 422), response.text

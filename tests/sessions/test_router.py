"""The Session API over HTTP: create, validate, analytics, revoke, API keys; bad input never 500."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantry.db.engine import Database
from tenantry.threats import SecurityEvents
from tests.conftest import TOKEN
from tests.passkeys.helpers import stepped_up_session


async def tenant(client: httpx.AsyncClient) -> str:
    tenant_id = f"sr-{uuid.uuid4().hex[:10]}"
    made = await client.post("/tenants", json={"id": tenant_id, "display_name": "x"}, headers=TOKEN)
    assert made.status_code == 201
    return tenant_id


def platform(tenant_id: str) -> dict[str, str]:
    return {**TOKEN, "X-Tenant-ID": tenant_id}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def open_session(
    client: httpx.AsyncClient, tenant_id: str, user: str = "u1", **extra: object
) -> dict[str, str]:
    response = await client.post(
        "/sessions/create",
        json={"tenant_id": tenant_id, "user_id": user, **extra},
        headers=platform(tenant_id),
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def test_session_lifecycle_over_http(client: httpx.AsyncClient) -> None:
    tenant_id = await tenant(client)
    issued = await open_session(client, tenant_id, security_level="high")
    sid, token = issued["session_id"], issued["token"]
    valid = await client.get(f"/sessions/{sid}/validate", headers=bearer(token))
    assert valid.status_code == 200
    assert valid.json()["user_id"] == "u1"
    listed = await client.get("/users/u1/sessions", headers=platform(tenant_id))
    assert [s["session_id"] for s in listed.json()] == [sid]
    analytics = await client.get(f"/sessions/{sid}/analytics", headers=platform(tenant_id))
    assert analytics.status_code == 200
    assert 0 <= analytics.json()["anomaly_score"] <= 1
    revoked = await client.delete(f"/sessions/{sid}", headers=platform(tenant_id))
    assert revoked.status_code == 204
    after = await client.get(f"/sessions/{sid}/validate", headers=bearer(token))
    assert after.status_code == 401
    assert after.headers["content-type"] == "application/problem+json"


async def test_revoke_others_keeps_the_callers_session(client: httpx.AsyncClient) -> None:
    tenant_id = await tenant(client)
    sessions = [await open_session(client, tenant_id) for _ in range(3)]
    response = await client.post(
        "/users/u1/sessions/revoke-others",
        json={"except_session": sessions[0]["session_id"]},
        headers=platform(tenant_id),
    )
    assert response.json() == {"revoked": 2}
    remaining = await client.get("/users/u1/sessions", headers=platform(tenant_id))
    assert [s["session_id"] for s in remaining.json()] == [sessions[0]["session_id"]]


async def test_foreign_sessions_answer_404(client: httpx.AsyncClient) -> None:
    a, b = await tenant(client), await tenant(client)
    theirs = await open_session(client, b)
    for method, path in (
        ("GET", f"/sessions/{theirs['session_id']}/analytics"),
        ("DELETE", f"/sessions/{theirs['session_id']}"),
    ):
        response = await client.request(method, path, headers=platform(a))
        assert response.status_code == 404, (method, path)
    mine = await open_session(client, a)
    mismatch = await client.get(
        f"/sessions/{theirs['session_id']}/validate", headers=bearer(mine["token"])
    )
    assert mismatch.status_code == 404
    cross = await client.get(
        "/users/u1/sessions", headers={**bearer(mine["token"]), "X-Tenant-ID": b}
    )
    assert cross.status_code == 404
    still = await client.get(
        f"/sessions/{theirs['session_id']}/validate", headers=bearer(theirs["token"])
    )
    assert still.status_code == 200


async def test_a_user_without_a_role_is_denied(client: httpx.AsyncClient) -> None:
    tenant_id = await tenant(client)
    issued = await open_session(client, tenant_id)
    denied = await client.get("/users/u1/sessions", headers=bearer(issued["token"]))
    assert denied.status_code == 403
    assert denied.json()["title"] == "permission denied"


async def test_api_keys_over_http(client: httpx.AsyncClient) -> None:
    tenant_id = await tenant(client)
    made = await client.post(
        "/api-keys",
        json={"name": "ingest", "service_account": "ingest-bot", "scopes": ["settings:read"]},
        headers=platform(tenant_id),
    )
    assert made.status_code == 201, made.text
    key, key_id = made.json()["key"], made.json()["key_id"]
    assert key.startswith(f"tnt_k_{tenant_id}.")
    assert "key" not in (await client.get("/api-keys", headers=platform(tenant_id))).json()[0]
    assert (await client.get("/settings", headers=bearer(key))).status_code == 200
    denied = await client.put("/settings/x", json={"value": 1}, headers=bearer(key))
    assert denied.status_code == 403  # scope settings:read only
    assert (
        await client.delete(f"/api-keys/{key_id}", headers=platform(tenant_id))
    ).status_code == 204
    assert (await client.get("/settings", headers=bearer(key))).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"tenant_id": "x", "user_id": "u"},
        {"tenant_id": "TENANT", "user_id": "u"},
        {"tenant_id": "abc", "user_id": ""},
        {"tenant_id": "abc", "user_id": "u", "session_type": "root"},
        {"tenant_id": "abc", "user_id": "u", "security_level": "military"},
        {"tenant_id": "abc", "user_id": "u", "client": {"ip": "x" * 100}},
    ],
)
async def test_bad_session_bodies_are_422(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    tenant_id = await tenant(client)
    body = {**body, "tenant_id": body.get("tenant_id", tenant_id)} if "tenant_id" in body else body
    response = await client.post("/sessions/create", json=body, headers=platform(tenant_id))
    assert response.status_code in (404, 422), response.text


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    session_id=st.text(max_size=120),
    token=st.one_of(
        st.text(max_size=120),
        st.from_regex(r"\Atnt_[sk]_[a-z0-9_-]{3,10}\.[A-Za-z0-9_-]{43}[0-9A-Za-z]{6}\Z"),
    ),
)
async def test_fuzzed_validation_never_500(
    client: httpx.AsyncClient, session_id: str, token: str
) -> None:
    safe_token = "".join(c for c in token if 32 < ord(c) < 127)  # what a header can carry
    response = await client.get(
        f"/sessions/{quote(session_id, safe='')}/validate",
        headers={"Authorization": f"Bearer {safe_token}"},
    )
    assert response.status_code in (401, 404, 405, 422), response.text


async def test_create_takes_the_callers_tenant_and_records_a_probe_of_another(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Issue 12, item 8: the tenant was wanted twice, and naming another one recorded nothing."""
    tenant_id, other = await tenant(client), await tenant(client)
    made = await client.post(
        "/sessions/create", json={"user_id": "u1"}, headers=platform(tenant_id)
    )
    assert made.status_code == 201, made.text
    assert made.json()["session_id"].startswith(f"ses_{tenant_id}.")
    key = await client.post(
        "/api-keys",
        json={"name": "k", "service_account": "bot", "scopes": ["sessions:create"]},
        headers=platform(tenant_id),
    )
    probe = await client.post(
        "/sessions/create",
        json={"tenant_id": other, "user_id": "u1"},
        headers=bearer(key.json()["key"]),
    )
    assert probe.status_code == 404
    events = await SecurityEvents(db).since(tenant_id, datetime.now(UTC) - timedelta(minutes=5))
    assert [e.kind for e in events].count("foreign_tenant_probe") == 1


async def test_a_session_can_do_no_more_than_the_credential_that_minted_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Issue 12, item 2: a key that may only create sessions opened one for admin alice, which
    then granted admin to mallory and made API keys."""
    tenant_id = await tenant(client)
    assert (await client.put("/roles/alice/admin", headers=platform(tenant_id))).status_code == 200
    key = await client.post(
        "/api-keys",
        json={"name": "k", "service_account": "bot", "scopes": ["sessions:create"]},
        headers=platform(tenant_id),
    )
    minted = await client.post(
        "/sessions/create", json={"user_id": "alice"}, headers=bearer(key.json()["key"])
    )
    assert minted.status_code == 201, minted.text
    alice = bearer(minted.json()["token"])
    for method, path in (
        ("PUT", "/roles/mallory/admin"),
        ("POST", "/api-keys"),
        ("GET", "/settings"),
    ):
        body = (
            {"name": "x", "service_account": "y", "scopes": ["*"]} if path == "/api-keys" else None
        )
        response = await client.request(method, path, json=body, headers=alice)
        assert response.status_code == 403, (path, response.text)
    assert (await client.get("/roles/mallory", headers=platform(tenant_id))).json()["roles"] == []
    # The backend's own session for alice (service token: no ceiling) keeps her powers, behind
    # the step-up that admin actions need of every session, whatever its label (USER/HIGH here).
    full = await open_session(client, tenant_id, "alice")
    stale = await client.get("/roles/mallory", headers=bearer(full["token"]))
    assert stale.status_code == 401, stale.text
    assert stale.json()["title"] == "step-up authentication required"
    stepped = bearer(await stepped_up_session(db, tenant_id, "alice"))
    assert (await client.get("/roles/mallory", headers=stepped)).status_code == 200


async def test_the_platform_tenant_has_no_sessions(client: httpx.AsyncClient) -> None:
    """Issue 12, item 4: an admin session in the platform tenant read the platform audit log."""
    refused = await client.post(
        "/sessions/create", json={"user_id": "eve"}, headers=platform("platform")
    )
    assert refused.status_code == 403, refused.text


async def test_the_platform_tenant_has_no_api_keys(client: httpx.AsyncClient) -> None:
    refused = await client.post(
        "/api-keys",
        json={"name": "k", "service_account": "bot", "scopes": ["*"]},
        headers=platform("platform"),
    )
    assert refused.status_code == 403, refused.text

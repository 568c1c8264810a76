"""The tenants and settings routes over HTTP, including cross-tenant probes and bad input."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TOKEN


def fresh_id() -> str:
    return f"http-{uuid.uuid4().hex[:10]}"


async def make_tenant(client: httpx.AsyncClient) -> str:
    tenant_id = fresh_id()
    response = await client.post(
        "/tenants", json={"id": tenant_id, "display_name": "Label"}, headers=TOKEN
    )
    assert response.status_code == 201, response.text
    return tenant_id


def as_tenant(tenant_id: str) -> dict[str, str]:
    return {**TOKEN, "X-Tenant-ID": tenant_id}


async def test_tenant_lifecycle_over_http(client: httpx.AsyncClient) -> None:
    tenant_id = await make_tenant(client)
    got = (await client.get(f"/tenants/{tenant_id}", headers=TOKEN)).json()
    assert got["status"] == "active"
    assert got["tier"] == "free"
    again = await client.post(
        "/tenants", json={"id": tenant_id, "display_name": "x"}, headers=TOKEN
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    patched = await client.patch(
        f"/tenants/{tenant_id}", json={"status": "suspended"}, headers=TOKEN
    )
    assert patched.json()["status"] == "suspended"
    listed = await client.get(
        "/tenants", params={"status": "suspended", "limit": 1000}, headers=TOKEN
    )
    assert tenant_id in {t["id"] for t in listed.json()}


@pytest.mark.parametrize(
    "body",
    [
        {"id": "No Caps", "display_name": "x"},
        {"id": "ab", "display_name": "x"},
        {"id": "fine-id", "display_name": ""},
        {"id": "fine-id", "display_name": "x", "tier": "platinum"},
        {"id": "fine-id", "display_name": "x", "extra": 1},
        {"display_name": "x"},
        [],
    ],
)
async def test_bad_tenant_bodies_are_422(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post("/tenants", json=body, headers=TOKEN)
    assert response.status_code == 422
    assert response.json()["errors"]
    assert (await client.get("/tenants/fine-id", headers=TOKEN)).status_code == 404


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/tenants", content=b"{not json", headers={**TOKEN, "Content-Type": "application/json"}
    )
    assert response.status_code == 422


async def test_settings_over_http(client: httpx.AsyncClient) -> None:
    tenant_id = await make_tenant(client)
    put = await client.put(
        "/settings/theme", json={"value": {"dark": True}}, headers=as_tenant(tenant_id)
    )
    assert put.status_code == 200
    assert put.json()["value"] == {"dark": True}
    assert (await client.get("/settings/theme", headers=as_tenant(tenant_id))).json()["value"] == {
        "dark": True
    }
    assert [
        s["key"] for s in (await client.get("/settings", headers=as_tenant(tenant_id))).json()
    ] == ["theme"]
    assert (await client.delete("/settings/theme", headers=as_tenant(tenant_id))).status_code == 204
    assert (await client.get("/settings/theme", headers=as_tenant(tenant_id))).status_code == 404


async def test_another_tenants_setting_is_404(client: httpx.AsyncClient) -> None:
    a, b = await make_tenant(client), await make_tenant(client)
    await client.put("/settings/secret", json={"value": "a-only"}, headers=as_tenant(a))
    probe = await client.get("/settings/secret", headers=as_tenant(b))
    assert probe.status_code == 404
    assert (await client.delete("/settings/secret", headers=as_tenant(b))).status_code == 404
    assert (await client.get("/settings/secret", headers=as_tenant(a))).json()["value"] == "a-only"


#: Words of PostgreSQL's own messages that must never reach a client.
SERVER_TEXT = ("syntax", "encoding", "0x00", "escape sequence", "violates", "constraint")


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b'{"value": "a\\u0000b"}', 422, "NUL character"),
        (b'{"value": {"k\\u0000": 1}}', 422, "NUL character"),
        (b'{"value": NaN}', 422, "NaN and Infinity"),
        (b'{"value": [1, -Infinity]}', 422, "NaN and Infinity"),
        (b'{"value": "' + b"x" * 65_535 + b'"}', 413, "at most 65536"),
    ],
    ids=["nul", "nul-in-key", "nan", "infinity", "over-64-kib"],
)
async def test_values_that_cannot_be_stored_get_our_words(
    client: httpx.AsyncClient, body: bytes, status: int, says: str
) -> None:
    tenant_id = await make_tenant(client)
    headers = {**as_tenant(tenant_id), "Content-Type": "application/json"}
    response = await client.put("/settings/k", content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert says in detail
    assert not [word for word in SERVER_TEXT if word in detail], detail
    assert (await client.get("/settings/k", headers=as_tenant(tenant_id))).status_code == 404


async def test_a_64_kib_value_is_stored(client: httpx.AsyncClient) -> None:
    tenant_id = await make_tenant(client)
    value = "x" * (64 * 1024 - 2)
    put = await client.put("/settings/k", json={"value": value}, headers=as_tenant(tenant_id))
    assert put.status_code == 200


async def test_a_nul_in_a_display_name_gets_our_words(client: httpx.AsyncClient) -> None:
    body = {"id": fresh_id(), "display_name": "Nul\u0000Label"}
    response = await client.post("/tenants", json=body, headers=TOKEN)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "NUL character" in detail
    assert not [word for word in SERVER_TEXT if word in detail], detail
    assert (await client.get(f"/tenants/{body['id']}", headers=TOKEN)).status_code == 404


async def test_a_huge_tenant_header_is_not_echoed_whole(client: httpx.AsyncClient) -> None:
    response = await client.get("/settings", headers=as_tenant("X" * 10_000))
    assert response.status_code == 422
    assert len(response.content) < 1000
    assert "XXXX" in response.json()["detail"]
    assert "10000 characters" in response.json()["detail"]


async def test_unknown_inactive_and_malformed_tenants(client: httpx.AsyncClient) -> None:
    assert (await client.get("/settings", headers=as_tenant(fresh_id()))).status_code == 404
    assert (await client.get("/settings", headers=as_tenant("NOT VALID"))).status_code == 422
    # the service token names no tenant without X-Tenant-ID: not authenticated for a tenant route
    assert (await client.get("/settings", headers=TOKEN)).status_code == 401
    tenant_id = await make_tenant(client)
    await client.patch(f"/tenants/{tenant_id}", json={"status": "suspended"}, headers=TOKEN)
    assert (await client.get("/settings", headers=as_tenant(tenant_id))).status_code == 403


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.text(min_size=0, max_size=140),
    value=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=8,
    ),
)
async def test_fuzzed_settings_never_500(
    client: httpx.AsyncClient, key: str, value: object
) -> None:
    tenant_id = "fuzz-tenant"
    if (await client.get(f"/tenants/{tenant_id}", headers=TOKEN)).status_code == 404:
        await client.post("/tenants", json={"id": tenant_id, "display_name": "fuzz"}, headers=TOKEN)
    path = "/settings/" + quote(key, safe="")
    response = await client.put(path, json={"value": value}, headers=as_tenant(tenant_id))
    assert response.status_code < 500, response.text
    assert response.status_code in (200, 404, 405, 422)


async def test_a_suspension_takes_effect_at_once(client: httpx.AsyncClient) -> None:
    """The service caches "tenant is active"; a status change through the API drops it."""
    tenant_id = await make_tenant(client)
    for _ in range(2):  # the second request is served from the cached "active"
        assert (await client.get("/settings", headers=as_tenant(tenant_id))).status_code == 200
    await client.patch(f"/tenants/{tenant_id}", json={"status": "suspended"}, headers=TOKEN)
    assert (await client.get("/settings", headers=as_tenant(tenant_id))).status_code == 403


async def test_no_caller_changes_a_managed_setting_over_http(client: httpx.AsyncClient) -> None:
    """Issue 12, item 5: PUT /settings/security_level changed the tenant's key level."""
    tenant_id = await make_tenant(client)
    for method in ("put", "delete"):
        response = await client.request(
            method.upper(),
            "/settings/security_level",
            json={"value": "high"} if method == "put" else None,
            headers=as_tenant(tenant_id),
        )
        assert response.status_code == 403, response.text
        assert "set_security_level" in response.json()["detail"]
    assert (
        await client.get("/settings/security_level", headers=as_tenant(tenant_id))
    ).status_code == 404

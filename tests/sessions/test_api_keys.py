"""API-key scopes: an action of the catalogue, ``<domain>:*`` or ``*``; anything else is refused."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tenantry.access import scope_allows
from tenantry.actions import ACTIONS
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput
from tenantry.sessions import ApiKeys
from tests.conftest import TOKEN, NewTenant

BAD_SCOPES = [
    "root:all",  # no such domain
    "settings:admin",  # a domain of the catalogue, not one of its actions
    "nodomain:*",
    "settings:*:*",
    "settings",
    "settings:",
    ":*",
    "**",
    "Settings:read",
    " settings:read",
    "",
]


@pytest.mark.parametrize("bad", [*BAD_SCOPES, 3, None, ["settings:read"]])
async def test_a_scope_outside_the_catalogue_is_refused(
    db: Database, new_tenant: NewTenant, bad: object
) -> None:
    tenant = (await new_tenant()).id
    keys = ApiKeys(db)
    with pytest.raises(InvalidInput, match="invalid scope") as refused:
        await keys.create(tenant, "sync", "bot", scopes=["settings:read", bad])  # type: ignore[list-item]
    assert repr(bad)[:80] in str(refused.value)
    with pytest.raises(InvalidInput, match="list of scopes"):
        await keys.create(tenant, "sync", "bot", scopes="settings:read")  # type: ignore[arg-type]
    assert await keys.list(tenant) == []  # nothing stored


async def test_actions_domains_and_star_are_accepted(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    keys = ApiKeys(db)
    everything = await keys.create(tenant, "all", "bot", scopes=["*"])
    domain = await keys.create(tenant, "settings", "bot", scopes=("settings:*", "settings:*"))
    each = await keys.create(tenant, "each", "bot", scopes=list(reversed(ACTIONS)))
    assert everything.scopes == ["*"]
    assert domain.scopes == ["settings:*"]  # duplicates collapse
    assert each.scopes == sorted(ACTIONS)
    for domain_scope in {f"{action.split(':')[0]}:*" for action in ACTIONS}:
        await keys.create(tenant, domain_scope, "bot", scopes=[domain_scope])
    # What they allow is scope_allows' rule, unchanged.
    star = (await keys.authenticate(everything.key)).scopes
    settings = (await keys.authenticate(domain.key)).scopes
    assert scope_allows(star, "settings:write")
    assert scope_allows(star, "cache:read")
    assert scope_allows(settings, "settings:write")
    assert not scope_allows(settings, "cache:read")


def platform(tenant_id: str) -> dict[str, str]:
    return {**TOKEN, "X-Tenant-ID": tenant_id}


async def test_scopes_over_http(client: httpx.AsyncClient) -> None:
    tenant_id = f"ak-{uuid.uuid4().hex[:10]}"
    made = await client.post("/tenants", json={"id": tenant_id, "display_name": "x"}, headers=TOKEN)
    assert made.status_code == 201, made.text

    async def create(*scopes: object) -> httpx.Response:
        body = {"name": "sync", "service_account": "bot", "scopes": list(scopes)}
        return await client.post("/api-keys", json=body, headers=platform(tenant_id))

    for bad in ("root:all", "settings:*:*", "nodomain:*"):
        refused = await create("settings:read", bad)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert repr(bad) in refused.json()["detail"]
    assert (await create("x" * 101)).status_code == 422
    assert (await client.get("/api-keys", headers=platform(tenant_id))).json() == []

    star = await create("*")
    assert star.status_code == 201, star.text
    assert star.json()["scopes"] == ["*"]
    key = {"Authorization": f"Bearer {star.json()['key']}"}
    assert (await client.put("/settings/x", json={"value": 1}, headers=key)).status_code == 200
    cache_only = await create("cache:*")
    assert cache_only.status_code == 201, cache_only.text
    key = {"Authorization": f"Bearer {cache_only.json()['key']}"}
    assert (await client.get("/settings", headers=key)).status_code == 403

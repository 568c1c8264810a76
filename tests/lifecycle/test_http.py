"""The lifecycle over HTTP, as the service runs it: a tenant provisioned by the service's own
worker, its credentials refused until it is active and again once suspended, the changes of
status the rules do not allow refused."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.conftest import TOKEN


async def _active(client: httpx.AsyncClient, tenant: str) -> Any:
    for _ in range(400):
        got = (await client.get(f"/tenants/{tenant}/lifecycle", headers=TOKEN)).json()
        if got["status"] == "active":
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"{tenant} was not provisioned: {got}")


async def test_provisioning_over_http(client: httpx.AsyncClient) -> None:
    tenant = f"label-{uuid.uuid4().hex[:10]}"
    body = {"policy": "standard_tier", "display_name": "Label", "admin_user": "ada"}
    started = await client.post(f"/tenants/{tenant}/lifecycle", json=body, headers=TOKEN)
    assert started.status_code == 202, started.text
    assert started.json()["provisioning"]["status"] in ("pending", "running", "completed")
    own = {**TOKEN, "X-Tenant-ID": tenant}
    state = await _active(client, tenant)
    assert state["quotas"]["requests_per_second"] == 100
    assert state["next_states"] == ["suspended", "archived", "deleted"]
    assert (await client.get("/settings/lifecycle.policy", headers=own)).status_code == 200
    again = await client.post(f"/tenants/{tenant}/lifecycle", json=body, headers=TOKEN)
    assert again.json()["provisioning"]["workflow_id"] == state["provisioning"]["workflow_id"]
    suspended = await client.patch(f"/tenants/{tenant}", json={"status": "suspended"},
                                   headers=TOKEN)  # fmt: skip
    assert suspended.status_code == 200, suspended.text
    refused = await client.get("/settings", headers=own)
    assert refused.status_code in (401, 403, 409), refused.text
    assert "suspended" in refused.text
    wrong = await client.patch(f"/tenants/{tenant}", json={"status": "provisioning"},
                               headers=TOKEN)  # fmt: skip
    assert wrong.status_code == 409, wrong.text
    for bad in ({"policy": "platinum_tier"}, {"policy": "free_tier", "extra": 1}):
        answer = await client.post(f"/tenants/{tenant}-x/lifecycle", json=bad, headers=TOKEN)
        assert answer.status_code == 422, answer.text
    missing = await client.get(f"/tenants/no-{uuid.uuid4().hex[:8]}/lifecycle", headers=TOKEN)
    assert missing.status_code == 404
    platform = await client.post("/tenants/platform/lifecycle", json={}, headers=TOKEN)
    assert platform.status_code == 409


async def test_erasure_over_http(client: httpx.AsyncClient) -> None:
    tenant = f"label-{uuid.uuid4().hex[:10]}"
    created = await client.post("/tenants", json={"id": tenant, "display_name": "L"},
                                headers=TOKEN)  # fmt: skip
    assert created.status_code == 201, created.text
    own = {**TOKEN, "X-Tenant-ID": tenant}
    assert (await client.put("/settings/ui.theme", json={"value": "dark"}, headers=own)).is_success
    active = await client.post(f"/tenants/{tenant}/erase", headers=TOKEN)
    assert active.status_code == 409
    assert "set its status to deleted first" in active.text
    deleted = await client.patch(f"/tenants/{tenant}", json={"status": "deleted"}, headers=TOKEN)
    assert deleted.status_code == 200, deleted.text
    erased = await client.post(f"/tenants/{tenant}/erase", headers=TOKEN)
    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert report["erased"] is True
    assert {t["table"]: t["left"] for t in report["tables"]}["tenant_settings"] == 0
    assert report["audit"]["verified"] is True
    assert report["keys"]["error"] == "KeysDestroyed"
    assert len(report["report_sha256"]) == 64
    again = await client.post(f"/tenants/{tenant}/erase", headers=TOKEN)
    assert again.status_code == 200
    assert again.json()["rows_deleted"] == 0
    assert (await client.post("/tenants/platform/erase", headers=TOKEN)).status_code == 409
    unknown = await client.post(f"/tenants/no-{uuid.uuid4().hex[:8]}/erase", headers=TOKEN)
    assert unknown.status_code == 404
    assert (await client.post("/tenants/Bad Id/erase", headers=TOKEN)).status_code == 422

"""``/platform/alerts/...`` over HTTP: the operators' rules, receivers, routing, deliveries and
silences with the service token alone; a tenant's credentials refused on each, and the
platform's settings invisible through the tenant's own routes; a platform rule over the
platform's ``breaker_open`` series fires through the service's background rounds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tenantry.api import create_app
from tenantry.config import Settings
from tenantry.context import PLATFORM_TENANT
from tenantry.db.engine import Database
from tests.alerts.platform_world import reset_platform
from tests.conftest import TOKEN, NewTenant
from tests.support.slack_server import SlackServer

HOOK = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
ROUTING = "route:\n  receiver: ops\n  group_by: [tenant]\n"
RULES = "alerts:\n  - name: breaker\n    condition: breaker_open_max > 0\n    severity: critical\n"


@pytest.fixture
async def clean(db: Database) -> AsyncIterator[None]:
    await reset_platform(db)
    yield
    await reset_platform(db)


async def _tenant_key(client: httpx.AsyncClient, tenant: str) -> dict[str, str]:
    body = {"name": "ops", "service_account": "bot", "scopes": ["alerts:read", "alerts:write"]}
    key = await client.post("/api-keys", json=body, headers={**TOKEN, "X-Tenant-ID": tenant})
    assert key.status_code == 201, key.text
    return {"Authorization": f"Bearer {key.json()['key']}"}


@pytest.mark.usefixtures("clean")
async def test_the_service_token_alone_sets_the_platforms_alerting(
    client: httpx.AsyncClient, new_tenant: NewTenant
) -> None:
    put = await client.put(
        "/platform/alerts/receivers/ops", json={"kind": "webhook", "secret": HOOK}, headers=TOKEN
    )
    assert put.status_code == 200, put.text
    assert put.json() == {"name": "ops", "kind": "webhook", "channel": None}
    listed = await client.get("/platform/alerts/receivers", headers=TOKEN)
    assert listed.json() == [put.json()]
    bad = await client.put("/platform/alerts/routing", json={"routing": "route: 3"}, headers=TOKEN)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/platform/alerts/routing", headers=TOKEN)).json() == {"routing": None}
    routing = await client.put("/platform/alerts/routing", json={"routing": ROUTING}, headers=TOKEN)
    assert routing.status_code == 200, routing.text
    got = await client.get("/platform/alerts/routing", headers=TOKEN)
    assert got.json() == {"routing": ROUTING}
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"matchers": ['tenant="noisy"'], "ends_at": ends, "comment": "known"}
    created = await client.post("/platform/alerts/silences", json=body, headers=TOKEN)
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["created_by"] == "service:platform"
    path = f"/platform/alerts/silences/{silence['id']}"
    assert (await client.get(path, headers=TOKEN)).json() == silence
    assert [s["id"] for s in (await client.get("/platform/alerts/silences", headers=TOKEN)).json()]
    changed = await client.patch(path, json={"comment": "still known"}, headers=TOKEN)
    assert changed.json()["comment"] == "still known"
    rules = await client.put("/platform/alerts/rules", json={"rules": RULES}, headers=TOKEN)
    assert rules.status_code == 200, rules.text
    assert [r["name"] for r in (await client.get("/platform/alerts/rules", headers=TOKEN)).json()]
    assert [a["rule"]["name"] for a in (await client.get("/platform/alerts", headers=TOKEN)).json()]
    assert (await client.get("/platform/alerts/deliveries", headers=TOKEN)).json() == []

    # a tenant: refused on every platform route, and its own routes show its own settings only
    tenant = (await new_tenant("plr")).id
    key = await _tenant_key(client, tenant)
    for credential in (key, {**key, "X-Tenant-ID": tenant}):
        for method, url in (
            ("GET", "/platform/alerts/routing"),
            ("PUT", "/platform/alerts/routing"),
            ("DELETE", "/platform/alerts/routing"),
            ("GET", "/platform/alerts/receivers"),
            ("PUT", "/platform/alerts/receivers/ops"),
            ("DELETE", "/platform/alerts/receivers/ops"),
            ("GET", "/platform/alerts/deliveries"),
            ("GET", "/platform/alerts/silences"),
            ("POST", "/platform/alerts/silences"),
            ("GET", path),
            ("PATCH", path),
            ("DELETE", path),
            ("GET", "/platform/alerts/rules"),
            ("PUT", "/platform/alerts/rules"),
            ("GET", "/platform/alerts"),
        ):
            json = {"routing": "route:\n  receiver: mine\n"} if method == "PUT" else None
            response = await client.request(method, url, headers=credential, json=json)
            assert response.status_code == 401, f"{method} {url}: {response.text}"
    own = {**TOKEN, "X-Tenant-ID": tenant}
    assert (await client.get("/alerts/routing", headers=own)).json() == {"routing": None}
    assert (await client.get("/alerts/receivers", headers=own)).json() == []
    assert (await client.get("/alerts/silences", headers=own)).json() == []
    assert (await client.get(path.removeprefix("/platform"), headers=own)).status_code == 404
    # nothing the tenant sent changed the platform's
    assert (await client.get("/platform/alerts/routing", headers=TOKEN)).json() == {
        "routing": ROUTING
    }
    assert len((await client.get("/platform/alerts/receivers", headers=TOKEN)).json()) == 1

    assert (await client.delete(path, headers=TOKEN)).status_code == 204
    assert (await client.get(path, headers=TOKEN)).json()["state"] == "expired"
    assert (await client.delete("/platform/alerts/routing", headers=TOKEN)).status_code == 204
    assert (await client.get("/platform/alerts/routing", headers=TOKEN)).json() == {"routing": None}
    gone = await client.delete("/platform/alerts/receivers/ops", headers=TOKEN)
    assert gone.status_code == 204
    assert (await client.delete("/platform/alerts/rules/breaker", headers=TOKEN)).status_code == 204


async def test_a_platform_rule_over_breaker_open_fires_in_the_service(
    settings: Settings, slack: SlackServer, db: Database
) -> None:
    await reset_platform(db)
    loopback = settings.model_copy(update={"slack_webhook_prefixes": "http://127.0.0.1:"})
    app = create_app(loopback)
    try:
        async with app.router.lifespan_context(app):
            state = app.state.tenantry
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                hook = {"kind": "webhook", "secret": slack.webhook("C0OPS")}
                put = await client.put(
                    "/platform/alerts/receivers/default", json=hook, headers=TOKEN
                )
                assert put.status_code == 200, put.text
                rules = await client.put(
                    "/platform/alerts/rules", json={"rules": RULES}, headers=TOKEN
                )
                assert rules.status_code == 200, rules.text
                backend = f"replica-{uuid.uuid4().hex[:6]}"
                state.monitoring.record("breaker_open", 1.0, {"backend": backend}, PLATFORM_TENANT)
                await state.monitoring.flush(everything=True)
                await state.alerts.evaluator.run_once()
                for _ in range(100):  # the dispatcher's rounds run every second, on their own
                    if slack.messages("C0OPS"):
                        break
                    await asyncio.sleep(0.1)
                assert "[FIRING] critical: breaker" in slack.messages("C0OPS")[0]["text"]
                listed = (await client.get("/platform/alerts", headers=TOKEN)).json()
                assert [a["status"] for a in listed] == ["firing"]
    finally:
        await reset_platform(db)

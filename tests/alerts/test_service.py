"""The service's alert path, wired as it runs: a tenant's receiver and rule set over HTTP, its
metrics recorded, the background evaluation firing the rule, and the background dispatcher
delivering the message to the loopback Slack."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tenantry.api import create_app
from tenantry.config import Settings
from tests.conftest import TOKEN
from tests.support.slack_server import SlackServer

RULE = """
alerts:
  - name: slow_sessions
    condition: session_creation_time_p95 > 100ms
    severity: warning
"""


async def test_a_rule_fires_and_its_message_reaches_slack(
    settings: Settings, slack: SlackServer
) -> None:
    loopback = settings.model_copy(update={"slack_webhook_prefixes": "http://127.0.0.1:"})
    app = create_app(loopback)
    async with app.router.lifespan_context(app):
        state = app.state.tenantry
        tenant = f"svc-{uuid.uuid4().hex[:12]}"
        await state.tenants.create(tenant, "Service")
        headers = {**TOKEN, "X-Tenant-ID": tenant}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            hook = {"kind": "webhook", "secret": slack.webhook("C0ALERTS")}
            put = await client.put("/alerts/receivers/default", json=hook, headers=headers)
            assert put.status_code == 200, put.text
            assert "secret" not in put.json()
            rules = await client.put("/alerts/rules", json={"rules": RULE}, headers=headers)
            assert rules.status_code == 200, rules.text
            for _ in range(20):
                await state.monitoring.record_metric("session_creation_time", 0.4, tenant_id=tenant)
            await state.monitoring.flush(everything=True)
            await state.alerts.evaluator.run_once()  # the round the clock would start
            for _ in range(100):  # the dispatcher's rounds run every second, on their own
                if slack.messages("C0ALERTS"):
                    break
                await asyncio.sleep(0.1)
            assert "[FIRING] warning: slow_sessions" in slack.messages("C0ALERTS")[0]["text"]
            listed = (await client.get("/alerts", headers=headers)).json()
            assert [a["status"] for a in listed] == ["firing"]
            deliveries = (await client.get("/alerts/deliveries", headers=headers)).json()
            assert [(d["rule_name"], d["status"]) for d in deliveries] == [
                ("slow_sessions", "sent")
            ]


async def test_a_routed_alert_waits_in_its_group_which_the_tenant_alone_reads(
    settings: Settings, slack: SlackServer
) -> None:
    loopback = settings.model_copy(update={"slack_webhook_prefixes": "http://127.0.0.1:"})
    app = create_app(loopback)
    async with app.router.lifespan_context(app):
        state = app.state.tenantry
        tenant, other = (f"svc-{uuid.uuid4().hex[:12]}" for _ in range(2))
        for name in (tenant, other):
            await state.tenants.create(name, "Service")
        headers = {**TOKEN, "X-Tenant-ID": tenant}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            hook = {"kind": "webhook", "secret": slack.webhook("C0GROUPS")}
            await client.put("/alerts/receivers/default", json=hook, headers=headers)
            routing = "route:\n  receiver: default\n  group_by: [alertname]\n  group_wait: 1h\n"
            put = await client.put("/alerts/routing", json={"routing": routing}, headers=headers)
            assert put.status_code == 200, put.text
            await client.put("/alerts/rules", json={"rules": RULE}, headers=headers)
            for _ in range(20):
                await state.monitoring.record_metric("session_creation_time", 0.4, tenant_id=tenant)
            await state.monitoring.flush(everything=True)
            await state.alerts.evaluator.run_once()
            groups = await client.get("/alerts/groups", headers=headers)
            assert groups.status_code == 200, groups.text
            [group] = groups.json()
            assert group["alerts"] == {"slow_sessions": "firing"}
            assert (group["receiver"], group["group_wait_seconds"]) == ("default", 3600)
            assert group["notified_at"] is None  # group_wait holds it back
            assert slack.messages("C0GROUPS") == []
            theirs = await client.get("/alerts/groups", headers={**TOKEN, "X-Tenant-ID": other})
            assert theirs.json() == []
            bad = await client.get("/alerts/groups?limit=0", headers=headers)
            assert bad.status_code == 422

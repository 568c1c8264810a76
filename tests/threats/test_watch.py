"""Threats are detected continuously, not only when someone asks (issue 12, item 16).

Before, a HIGH threat reached the audit log only when ``GET /security/threats`` was polled.
"""

from __future__ import annotations

import httpx

from tenantry.db.engine import Database
from tenantry.security import SecurityManager
from tenantry.sessions.tokens import make_token
from tenantry.threats import SecurityEvents, ThreatWatch, on_events
from tests.conftest import NewTenant


async def test_a_high_threat_is_audited_without_a_request(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    security = SecurityManager(db)
    watch = ThreatWatch(security.threats, interval=3600)
    on_events(db, watch.notice)
    events = SecurityEvents(db)
    for _ in range(12):  # twelve failed logins in a few seconds: HIGH
        await events.record(tenant, "failed_validation", principal_id="mila", ip="203.0.113.7")
    assert tenant in await watch.run_once()  # the tenant was noticed, and analysed
    entries = [e.entry for e in await security.audit_log.entries(tenant) if e.entry]
    detected = [e for e in entries if e.action == "threat.detected"]
    assert {e.resource for e in detected} == {"user:mila", "ip:203.0.113.7"}
    assert await watch.run_once() == []  # nothing new: nothing analysed again


async def test_the_service_watches_its_events(
    client: httpx.AsyncClient, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    app = client._transport.app  # type: ignore[attr-defined]  # the app behind the test client
    watch: ThreatWatch = app.state.tenantry.threat_watch
    # stopped in this app (tests/conftest.py): no round takes the tenant before it is looked at
    assert not watch.running
    forged = {"Authorization": f"Bearer {make_token('s', tenant)}"}  # a failed validation
    assert (await client.get("/settings", headers=forged)).status_code == 401
    assert tenant in watch.noticed

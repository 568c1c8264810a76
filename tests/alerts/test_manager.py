"""AlertManager on PostgreSQL: the documents' rules set per tenant, evaluated over the tenant's
series and threat analysis, their alerts moved through pending, firing and resolved in the
database (a new manager reads the same states), one tenant's rules invisible to another, and
the HTTP routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tenantry.alerts import AlertStatus
from tenantry.alerts.manager import AlertManager
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput, NotFound
from tenantry.monitoring import MonitoringManager
from tenantry.monitoring.aggregate import Aggregator
from tenantry.threats import ThreatAnalyzer
from tests.conftest import TOKEN, NewTenant

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)

RULES = """
alerts:
  - name: high_session_creation_latency
    condition: session_creation_time_p95 > 100ms
    severity: warning
    for: 1m
  - name: threat_detected
    condition: threat_level == "high" or threat_level == "critical"
    severity: critical
  - name: quiet
    condition: threat_level == "low"
    severity: info
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now


def _by_name(views: list[object]) -> dict[str, AlertStatus]:
    return {v.rule.name: v.state.status for v in views}  # type: ignore[attr-defined]


async def test_rules_move_through_pending_firing_and_resolved(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("al")).id
    clock = Clock()
    monitoring = MonitoringManager(db, aggregator=Aggregator(resolution=10, clock=clock))
    alerts = AlertManager(db, monitoring=monitoring, threats=ThreatAnalyzer(db))
    rules = await alerts.set_rules(tenant, RULES, actor="ops")
    assert [r.name for r in rules] == ["high_session_creation_latency", "threat_detected", "quiet"]

    for second in range(0, 120, 2):  # two minutes of slow session creations (250 ms)
        clock.now = T0.timestamp() + second
        monitoring.record("session_creation_time", 0.250, None, tenant)
    await monitoring.flush(everything=True)

    first = await alerts.evaluate(tenant, T0 + timedelta(seconds=60))
    assert {(t.rule.name, t.after) for t in first} == {
        ("high_session_creation_latency", AlertStatus.PENDING),
        ("quiet", AlertStatus.FIRING),  # no security events: the level is low
    }
    views = await alerts.alerts(tenant)
    latency = next(v for v in views if v.rule.name == "high_session_creation_latency")
    assert latency.observed["session_creation_time_p95"] == pytest.approx(0.25, rel=0.01)

    # a new manager (a restart, another process) continues from the stored states
    again = AlertManager(db, monitoring=monitoring, threats=ThreatAnalyzer(db))
    fired = await again.evaluate(tenant, T0 + timedelta(seconds=120))
    assert [(t.rule.name, t.before, t.after) for t in fired] == [
        ("high_session_creation_latency", AlertStatus.PENDING, AlertStatus.FIRING)
    ]
    # ten minutes on, the window holds no value: the condition no longer holds
    resolved = await again.evaluate(tenant, T0 + timedelta(minutes=12))
    assert [(t.rule.name, t.after) for t in resolved] == [
        ("high_session_creation_latency", AlertStatus.RESOLVED)
    ]
    assert _by_name(await again.alerts(tenant)) == {
        "high_session_creation_latency": AlertStatus.RESOLVED,
        "threat_detected": AlertStatus.INACTIVE,
        "quiet": AlertStatus.FIRING,
    }


async def test_rules_are_the_tenants_own_and_bad_rules_change_nothing(
    db: Database, new_tenant: NewTenant
) -> None:
    a, b = (await new_tenant("al")).id, (await new_tenant("al")).id
    alerts = AlertManager(db)
    await alerts.set_rules(a, RULES)
    assert await alerts.rules(b) == []
    assert await alerts.alerts(b) == []
    with pytest.raises(InvalidInput, match="severity"):
        await alerts.set_rules(a, "alerts:\n  - name: x\n    condition: y > 1\n    severity: meh\n")
    with pytest.raises(InvalidInput, match="YAML"):
        await alerts.set_rules(a, "alerts: [unclosed")
    many = "alerts:\n" + "".join(
        f"  - name: r{n}\n    condition: m{n} > 1\n    severity: info\n" for n in range(101)
    )
    with pytest.raises(InvalidInput, match="at most 100 series"):
        await alerts.set_rules(a, many)  # each series is a query at every evaluation
    assert len(await alerts.rules(a)) == 3  # unchanged
    with pytest.raises(NotFound):
        await alerts.delete_rule(b, "quiet")  # another tenant's rule is not there
    await alerts.delete_rule(a, "quiet")
    assert [r.name for r in await alerts.rules(a)] == [
        "high_session_creation_latency",
        "threat_detected",
    ]
    await alerts.set_rules(a, "alerts: []")
    assert await alerts.rules(a) == []


async def test_the_routes_act_for_the_callers_tenant(
    client: httpx.AsyncClient, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("al")).id
    headers = {**TOKEN, "X-Tenant-ID": tenant}
    put = await client.put("/alerts/rules", json={"rules": RULES}, headers=headers)
    assert put.status_code == 200, put.text
    assert [r["name"] for r in put.json()] == [
        "high_session_creation_latency",
        "threat_detected",
        "quiet",
    ]
    assert put.json()[0]["for_seconds"] == 60.0
    listed = await client.get("/alerts", headers=headers)
    assert [a["status"] for a in listed.json()] == ["inactive"] * 3
    bad = await client.put("/alerts/rules", json={"rules": "alerts: 5"}, headers=headers)
    assert bad.status_code == 422
    deleted = await client.delete("/alerts/rules/quiet", headers=headers)
    assert deleted.status_code == 204
    missing = await client.delete("/alerts/rules/quiet", headers=headers)
    assert missing.status_code == 404
    assert len((await client.get("/alerts/rules", headers=headers)).json()) == 2

"""Threat analysis: rules, bursts against the baseline, subjects, isolation, callbacks, HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput
from tenantry.threats.baseline import anchor
from tenantry.threats.events import SecurityEvents
from tenantry.threats.manager import Threat, ThreatAnalyzer, ThreatLevel
from tenantry.threats.models import security_events
from tests.conftest import TOKEN, NewTenant

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


async def add(
    db: Database,
    tenant_id: str,
    kind: str,
    n: int = 1,
    *,
    at: datetime = NOW - timedelta(minutes=10),
    every: timedelta = timedelta(0),
    principal: str | None = "u1",
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Insert ``n`` events of ``kind`` at ``at``, ``at + every``, ... in one tenant transaction."""
    rows = [
        {
            "tenant_id": tenant_id,
            "occurred_at": at + every * i,
            "kind": kind,
            "principal_id": principal,
            "ip": ip,
            "detail": detail or {},
        }
        for i in range(n)
    ]
    with tenant_scope(tenant_id):
        async with db.tenant_transaction() as conn:
            await conn.execute(insert(security_events), rows)


def test_levels_are_ordered() -> None:
    low, medium, high, critical = (ThreatLevel(v) for v in ("low", "medium", "high", "critical"))
    assert low < medium < high < critical
    assert critical > high > medium > low
    assert high >= ThreatLevel.HIGH
    assert high <= "critical"
    assert sorted([critical, low, high, medium]) == [low, medium, high, critical]
    assert max(medium, critical, low) is critical
    assert high.at_least("medium")
    assert not medium.at_least(ThreatLevel.HIGH)
    assert ThreatLevel.highest([]) is low
    assert ThreatLevel.highest([high, medium]) is high


async def test_no_events_is_low(db: Database, new_tenant: NewTenant) -> None:
    tenant, quiet = await new_tenant(), await new_tenant()
    await add(db, quiet.id, "failed_validation", 4, at=NOW - timedelta(minutes=1))
    low = await ThreatAnalyzer(db).analyze(quiet.id, HOUR, now=NOW)
    assert low.level is ThreatLevel.LOW
    assert low.users == {}
    assert low.counts == {"failed_validation": 4}
    report = await ThreatAnalyzer(db).analyze(tenant.id)
    assert report.level is ThreatLevel.LOW
    assert report.total_events == 0
    assert report.subjects == []
    assert report.users == {}


@pytest.mark.parametrize(
    ("kind", "n", "detail", "expected"),
    [
        ("failed_validation", 5, None, "medium"),
        ("foreign_tenant_probe", 1, None, "medium"),
        ("foreign_tenant_probe", 5, None, "high"),
        ("revoked_token_use", 1, None, "medium"),
        ("revoked_token_use", 3, None, "high"),
        ("passkey_counter_regression", 1, None, "critical"),
        ("device_mismatch", 1, None, "high"),
        ("anomaly", 1, {"score": 0.7}, "medium"),
        ("anomaly", 1, {"score": 0.95}, "high"),
        ("new_device", 3, None, "medium"),
    ],
)
async def test_rules_on_recorded_events(
    db: Database,
    new_tenant: NewTenant,
    *,
    kind: str,
    n: int,
    detail: dict[str, Any] | None,
    expected: str,
) -> None:
    tenant = await new_tenant()
    events = SecurityEvents(db)
    for _ in range(n):
        await events.record(tenant.id, kind, principal_id="u1", detail=detail)
    report = await ThreatAnalyzer(db).analyze(tenant.id)
    assert report.users == {"u1": ThreatLevel(expected)}
    assert report.level is ThreatLevel(expected)
    assert report.counts == {kind: n}
    (subject,) = report.subjects
    assert subject.signals[0].kind == kind
    assert subject.signals[0].count == n


async def test_failures_in_few_minutes_are_high(db: Database, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    # 12 failures in 2 minutes: an attack on u1; 12 spread over the hour: u2's usual typos.
    await add(db, tenant.id, "failed_validation", 12, every=timedelta(seconds=10), principal="u1")
    start, five_minutes = NOW - timedelta(minutes=59), timedelta(minutes=5)
    await add(db, tenant.id, "failed_validation", 12, at=start, every=five_minutes, principal="u2")
    # 6 in five minutes: medium
    await add(db, tenant.id, "failed_validation", 6, every=timedelta(seconds=20), principal="u3")
    report = await ThreatAnalyzer(db).analyze(tenant.id, HOUR, now=NOW)
    assert report.users == {"u1": ThreatLevel.HIGH, "u3": ThreatLevel.MEDIUM}
    assert report.counts == {"failed_validation": 30}


async def test_users_and_ips_are_separate(db: Database, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    await add(db, tenant.id, "failed_validation", 12, every=timedelta(seconds=5))
    for user in ("u2", "u3", "u4", "u5"):  # 4 each: 16 in all, but no user reaches 5
        await add(db, tenant.id, "failed_validation", 4, principal=user)
    await add(db, tenant.id, "foreign_tenant_probe", 6, principal=None, ip="203.0.113.9")
    report = await ThreatAnalyzer(db).analyze(tenant.id, HOUR, now=NOW)
    assert report.users["u1"] is ThreatLevel.HIGH
    assert set(report.users) == {"u1"}  # the others are LOW: not listed
    assert report.ips == {"203.0.113.9": ThreatLevel.HIGH}
    assert report.counts == {"failed_validation": 28, "foreign_tenant_probe": 6}
    assert report.total_events == 34
    assert report.level is ThreatLevel.HIGH


async def test_two_kinds_of_high_are_critical(db: Database, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    await add(db, tenant.id, "device_mismatch")
    await add(db, tenant.id, "revoked_token_use", 3)
    report = await ThreatAnalyzer(db).analyze(tenant.id, HOUR, now=NOW)
    assert report.users == {"u1": ThreatLevel.CRITICAL}


async def test_burst_against_the_baseline(db: Database, new_tenant: NewTenant) -> None:
    quiet, busy = await new_tenant(), await new_tenant()
    for tenant, per_window in ((quiet, 3), (busy, 60)):
        for hour in range(2, 26):  # the 24 windows before: `per_window` session limits each
            start = NOW - HOUR * hour + timedelta(minutes=1)
            await add(db, tenant.id, "session_limit", per_window, at=start, principal=None)
        # the window: 60 session limits from 60 different users (each one is unremarkable)
        for n in range(60):
            await add(db, tenant.id, "session_limit", principal=f"user-{n}")
    analyzer = ThreatAnalyzer(db)
    report = await analyzer.analyze(quiet.id, HOUR, now=NOW)
    (burst,) = report.bursts
    assert burst.kind == "session_limit"
    assert burst.count == 60
    assert burst.baseline_median == 3
    assert burst.level is ThreatLevel.HIGH
    assert report.level is ThreatLevel.HIGH
    assert report.subjects[0].subject_type == "tenant"
    assert report.anomaly_score > 0.5
    assert report.users == {}
    usual = await analyzer.analyze(busy.id, HOUR, now=NOW)
    assert usual.bursts == []
    assert usual.level is ThreatLevel.LOW
    assert usual.anomaly_score == 0


async def test_other_tenants_never_count(db: Database, new_tenant: NewTenant) -> None:
    a, b = await new_tenant(), await new_tenant()
    await add(db, a.id, "failed_validation", principal="u1")
    await add(db, b.id, "passkey_counter_regression", principal="u1")
    await add(db, b.id, "failed_validation", 500, principal="u1", ip="198.51.100.1")
    await add(db, b.id, "failed_validation", 50, at=NOW - 3 * HOUR, principal="u1")
    report = await ThreatAnalyzer(db).analyze(a.id, HOUR, now=NOW)
    assert report.counts == {"failed_validation": 1}
    assert report.bursts == []
    assert report.level is ThreatLevel.LOW
    assert report.ips == {}
    assert report.tenant_id == a.id


async def test_window_bounds(db: Database, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    await add(db, tenant.id, "anomaly", at=NOW - HOUR)  # the first instant: inside
    await add(db, tenant.id, "anomaly", at=NOW - HOUR - timedelta(microseconds=1))  # before
    await add(db, tenant.id, "anomaly", at=NOW)  # the end is excluded
    report = await ThreatAnalyzer(db).analyze(tenant.id, HOUR, now=NOW)
    assert report.counts == {"anomaly": 1}
    assert (report.window_start, report.window_end) == (NOW - HOUR, NOW)
    wider = await ThreatAnalyzer(db).analyze(tenant.id, 2 * HOUR, now=NOW)
    assert wider.counts == {"anomaly": 2}


async def test_callbacks_fire_once_for_high_and_above(db: Database, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    seen: list[Threat] = []
    audit: list[Threat] = []

    async def failing(threat: Threat) -> None:
        raise RuntimeError("sink down")

    async def monitoring(threat: Threat) -> None:
        seen.append(threat)

    async def auditing(threat: Threat) -> None:
        audit.append(threat)

    analyzer = ThreatAnalyzer(db, on_threat=[failing, monitoring, auditing])
    await add(db, tenant.id, "device_mismatch", principal="u1")
    await add(db, tenant.id, "revoked_token_use", principal="u2")  # medium: not raised
    for _ in range(3):
        await analyzer.analyze(tenant.id, HOUR, now=NOW)
    assert [(t.subject_type, t.subject, t.level) for t in seen] == [
        ("user", "u1", ThreatLevel.HIGH)
    ]
    assert audit == seen
    assert seen[0].tenant_id == tenant.id
    assert seen[0].window_end == NOW
    assert "device" in seen[0].reasons[0]
    await add(db, tenant.id, "passkey_counter_regression", principal="u1")
    await analyzer.analyze(tenant.id, HOUR, now=NOW)
    assert [t.level for t in seen] == [ThreatLevel.HIGH, ThreatLevel.CRITICAL]


@pytest.mark.parametrize("window", [timedelta(0), -HOUR, timedelta(days=7, seconds=1)])
async def test_bad_window(db: Database, new_tenant: NewTenant, window: timedelta) -> None:
    tenant = await new_tenant()
    with pytest.raises(InvalidInput):
        await ThreatAnalyzer(db).analyze(tenant.id, window)
    with pytest.raises(InvalidInput):  # a naive `now`
        await ThreatAnalyzer(db).analyze(tenant.id, HOUR, now=datetime(2026, 1, 1))


async def test_ten_thousand_events(db: Database, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    await add(db, tenant.id, "session_limit", 10_000, every=timedelta(milliseconds=50))
    report = await ThreatAnalyzer(db).analyze(tenant.id, HOUR, now=NOW)
    assert report.counts == {"session_limit": 10_000}


async def test_http_route(client: httpx.AsyncClient, db: Database, new_tenant: NewTenant) -> None:
    tenant = await new_tenant()
    await SecurityEvents(db).record(tenant.id, "device_mismatch", principal_id="u7")
    headers = {**TOKEN, "X-Tenant-ID": tenant.id}
    response = await client.get("/security/threats", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tenant_id"] == tenant.id
    assert body["level"] == "high"
    assert body["users"] == {"u7": "high"}
    assert body["counts"] == {"device_mismatch": 1}
    [subject] = body["subjects"]
    assert subject["subject_type"] == "user"
    assert subject["subject"] == "u7"
    assert subject["counts"] == {"device_mismatch": 1}
    [signal] = subject["signals"]
    assert signal["kind"] == "device_mismatch"
    assert signal["level"] == "high"
    assert signal["count"] == 1
    assert "another device" in signal["reason"]
    assert body["bursts"] == []
    assert 0 <= body["anomaly_score"] <= 1
    wide = await client.get("/security/threats?window_minutes=10080", headers=headers)
    assert wide.status_code == 200
    for bad in ("0", "10081", "-5", "soon"):
        r = await client.get(f"/security/threats?window_minutes={bad}", headers=headers)
        assert r.status_code == 422, (bad, r.text)
    assert (await client.get("/security/threats")).status_code == 401


def test_baseline_anchor_floors_the_start_to_a_sixtieth_of_the_window() -> None:
    start = datetime(2026, 11, 21, 11, 7, 42, 500, tzinfo=UTC)
    assert anchor(start, HOUR) == datetime(2026, 11, 21, 11, 7, tzinfo=UTC)
    assert anchor(start, timedelta(days=1)) == datetime(2026, 11, 21, 10, 48, tzinfo=UTC)  # 24 min
    assert anchor(start, timedelta(seconds=10)) == datetime(2026, 11, 21, 11, 7, 42, tzinfo=UTC)


async def test_the_baseline_is_cached_until_its_anchor_moves(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant, other = await new_tenant(), await new_tenant()
    for t in (tenant, other):
        await add(db, t.id, "session_limit", 60, principal=None)  # 60 in the window
    analyzer = ThreatAnalyzer(db)
    (burst,) = (await analyzer.analyze(tenant.id, HOUR, now=NOW)).bursts  # quiet baseline
    assert burst.baseline_median == 0
    for hour in range(2, 26):  # now the 24 windows before hold as many: no burst any more
        await add(db, tenant.id, "session_limit", 60, at=NOW - HOUR * hour, principal=None)
    cached = await analyzer.analyze(tenant.id, HOUR, now=NOW + timedelta(seconds=30))
    assert [b.baseline_median for b in cached.bursts] == [0]  # same anchor: the kept baseline
    moved = await analyzer.analyze(tenant.id, HOUR, now=NOW + timedelta(minutes=1))
    assert moved.bursts == []  # the anchor moved on: recounted
    assert (await ThreatAnalyzer(db).analyze(tenant.id, HOUR, now=NOW)).bursts == []
    (still,) = (await analyzer.analyze(other.id, HOUR, now=NOW)).bursts  # per tenant
    assert still.baseline_median == 0
    analyzer.baselines.clear()
    assert (await analyzer.analyze(tenant.id, HOUR, now=NOW)).bursts == []

"""``/alerts/silences`` over HTTP: create, list (by state and filter), read, change and expire;
bad silences answered with problem+json and nothing changed; another tenant's silence not found
by any route, and left as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tenantry.audit.trail import trail_for
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tests.alerts.test_silences import _insert
from tests.conftest import TOKEN, NewTenant


def _headers(tenant: str) -> dict[str, str]:
    return {**TOKEN, "X-Tenant-ID": tenant}


def _later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def _listed(client: httpx.AsyncClient, tenant: str, **query: Any) -> list[dict[str, Any]]:
    response = await client.get("/alerts/silences", params=query, headers=_headers(tenant))
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def test_create_list_read_change_and_expire(
    client: httpx.AsyncClient, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sr")).id
    headers = _headers(tenant)
    body = {
        "matchers": ['alertname="disk_full"', 'env=~"staging|dev"'],
        "ends_at": _later(hours=2),
        "comment": "disk maintenance",
    }
    created = await client.post("/alerts/silences", json=body, headers=headers)
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["state"] == "active"
    assert silence["matchers"] == body["matchers"]
    assert silence["created_by"] == "service:platform"
    later = {**body, "starts_at": _later(hours=1), "matchers": ["team=db"]}
    pending = (await client.post("/alerts/silences", json=later, headers=headers)).json()
    assert pending["state"] == "pending"
    assert [s["id"] for s in await _listed(client, tenant)] == [silence["id"], pending["id"]]
    assert [s["id"] for s in await _listed(client, tenant, state="pending")] == [pending["id"]]
    # a filter applies to the silences' matchers (their values, as Alertmanager's filter)
    for query, ids in (('alertname="disk_full"', [silence["id"]]), ('env="dev"', [])):
        assert [s["id"] for s in await _listed(client, tenant, filter=query)] == ids
    path = f"/alerts/silences/{silence['id']}"
    assert (await client.get(path, headers=headers)).json() == silence
    change = {"comment": "until the fix is out", "ends_at": _later(hours=3)}
    changed = await client.patch(path, json=change, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["comment"] == "until the fix is out"
    expired = await client.delete(path, headers=headers)
    assert expired.status_code == 204, expired.text
    again = (await client.get(path, headers=headers)).json()
    assert again["state"] == "expired"
    assert [s["id"] for s in await _listed(client, tenant, state="expired")] == [silence["id"]]
    refused = await client.patch(path, json={"comment": "x"}, headers=headers)
    assert refused.status_code == 409
    entries = await trail_for(db).audit_log.entries(tenant, 0, 100)
    audited = [(e.entry.action, e.entry.actor) for e in entries if e.entry is not None]
    assert [a for a in audited if "silence" in a[0]] == [
        ("alerts.silence.create", "service:platform"),
        ("alerts.silence.create", "service:platform"),
        ("alerts.silence.update", "service:platform"),
        ("alerts.silence.expire", "service:platform"),
    ]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"matchers": ["alertname"]}, 422, "invalid matcher"),
        ({"matchers": ['alertname=~".*"']}, 422, "must not match"),
        ({"matchers": []}, 422, "matchers"),
        ({"matchers": ["a=b"], "starts_at": "+3h"}, 422, "starts_at"),
        ({"matchers": ["a=b"], "starts_at": "END+1"}, 422, "after starts_at"),
        ({"matchers": ["a=b"], "ends_at": "PAST"}, 422, "past"),
        ({"matchers": ["a=b"], "ends_at": "YEAR+"}, 422, "365 days"),
        ({"matchers": ["a=b"], "ends_at": "2099-01-01T00:00:00"}, 422, "zone"),
        ({"matchers": ["a=b"], "comment": "x" * 1001}, 422, "comment"),
        ({"matchers": ["a=b"], "created_by": "mallory"}, 422, "created_by"),
        ({"matchers": ["a=b"] * 33}, 422, "matchers"),
    ],
)
async def test_bad_silences_are_problems_and_change_nothing(
    client: httpx.AsyncClient,
    new_tenant: NewTenant,
    body: dict[str, Any],
    status: int,
    fragment: str,
) -> None:
    tenant = (await new_tenant("sr")).id
    now = datetime.now(UTC)
    times = {
        "END+1": (now + timedelta(hours=2)).isoformat(),
        "PAST": (now - timedelta(minutes=1)).isoformat(),
        "YEAR+": (now + timedelta(days=366)).isoformat(),
    }
    sent = {"ends_at": (now + timedelta(hours=1)).isoformat(), **body}
    sent = {k: times.get(v, v) if isinstance(v, str) else v for k, v in sent.items()}
    response = await client.post("/alerts/silences", json=sent, headers=_headers(tenant))
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert fragment in response.text
    assert await _listed(client, tenant) == []


async def test_too_many_live_silences_is_a_conflict(
    client: httpx.AsyncClient, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sr")).id
    now = datetime.now(UTC)
    await _insert(db, tenant, 1000, now, now + timedelta(hours=1))
    body = {"matchers": ["a=b"], "ends_at": _later(hours=1)}
    response = await client.post("/alerts/silences", json=body, headers=_headers(tenant))
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert len(await _listed(client, tenant)) == 1000


async def test_another_tenant_cannot_list_read_change_or_expire_a_silence(
    client: httpx.AsyncClient, db: Database, new_tenant: NewTenant
) -> None:
    a, b = (await new_tenant("sr")).id, (await new_tenant("sr")).id
    body = {"matchers": ['alertname="secret-of-a"'], "ends_at": _later(hours=1)}
    silence = (await client.post("/alerts/silences", json=body, headers=_headers(a))).json()
    path = f"/alerts/silences/{silence['id']}"
    assert await _listed(client, b) == []
    assert await _listed(client, b, filter='alertname="secret-of-a"') == []
    for method, json in (("GET", None), ("PATCH", {"comment": "mine"}), ("DELETE", None)):
        response = await client.request(method, path, json=json, headers=_headers(b))
        assert response.status_code == 404, (method, response.text)
        assert "secret-of-a" not in response.text
    assert (await client.get(path, headers=_headers(a))).json() == silence
    with tenant_scope(b):
        async with db.tenant_transaction() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM tenantry.alert_silences")) == 0

"""The service's own transactions go through its ConnectionManager, shown over HTTP.

The app's lifespan routes its ``Database`` through the ``ConnectionManager`` it makes, so every
transaction a request (or background work) opens passes the tenant's bulkhead lane, the
primary's breaker and its pool gate. Shown from outside: ``GET /connections/health`` counts the
calls and the lanes they took; a tenant whose lane is full is answered a 429 problem+json with
``Retry-After`` while another tenant is served; an open breaker is a 503, never a 500.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tenantry.api import create_app
from tenantry.api.state import AppState
from tenantry.config import Settings
from tenantry.connections import BreakerState
from tests.conftest import TOKEN

WRITES = 20


def as_tenant(tenant_id: str) -> dict[str, str]:
    return {**TOKEN, "X-Tenant-ID": tenant_id}


async def make_tenant(client: httpx.AsyncClient, prefix: str) -> str:
    tenant_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
    made = await client.post(
        "/tenants", json={"id": tenant_id, "display_name": prefix}, headers=TOKEN
    )
    assert made.status_code == 201, made.text
    return tenant_id


async def postgres(client: httpx.AsyncClient) -> dict[str, Any]:
    """The primary's entry of ``GET /connections/health``."""
    health = await client.get("/connections/health", headers=TOKEN)
    assert health.status_code == 200, health.text
    backends = {b["name"]: b for b in health.json()["backends"]}
    primary: dict[str, Any] = backends["postgres"]
    return primary


Service = tuple[httpx.AsyncClient, AppState]


@asynccontextmanager
async def started(settings: Settings, bulkhead_timeout: float) -> AsyncIterator[Service]:
    """The app with its lifespan run, over ASGI, and what its lifespan made."""
    app = create_app(settings.model_copy(update={"bulkhead_timeout": bulkhead_timeout}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tenantry") as client:
            yield client, app.state.tenantry


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    """Short bulkhead waits: a call that finds its tenant's lane full is refused at once."""
    async with started(settings, 0.05) as made:
        yield made


@pytest.fixture
async def patient_service(settings: Settings) -> AsyncIterator[Service]:
    """Long bulkhead waits: a call that would wait for its own lane waits, then fails."""
    async with started(settings, 30.0) as made:
        yield made


async def test_tenant_writes_pass_the_primary_and_the_tenants_lane(
    service: Service,
) -> None:
    client, _ = service
    tenant = await make_tenant(client, "routed")
    before = await postgres(client)
    for n in range(WRITES):
        put = await client.put(
            f"/settings/k{n}", json={"value": {"n": n}}, headers=as_tenant(tenant)
        )
        assert put.status_code == 200, put.text
    after = await postgres(client)
    assert after["calls"] - before["calls"] >= WRITES
    lanes = before["pool"]["bulkhead"], after["pool"]["bulkhead"]
    assert lanes[1]["admitted"] - lanes[0]["admitted"] >= WRITES  # each in its tenant's lane


async def test_a_tenant_at_its_cap_gets_429_and_another_is_served(
    service: Service,
) -> None:
    client, state = service
    noisy, quiet = await make_tenant(client, "noisy"), await make_tenant(client, "quiet")
    member = state.connections.primary_member
    assert member is not None
    lanes = member.pool.bulkhead
    for _ in range(lanes.cap(noisy)):  # the noisy tenant's calls in flight: its lane is full
        await lanes.acquire(noisy)
    try:
        refused = await client.put(
            "/settings/theme", json={"value": "dark"}, headers=as_tenant(noisy)
        )
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        body = refused.json()
        assert body["title"] == "too many concurrent calls"
        assert noisy in body["detail"]
        served = await client.put(
            "/settings/theme", json={"value": "light"}, headers=as_tenant(quiet)
        )
        assert served.status_code == 200, served.text
        assert (await client.get("/settings/theme", headers=as_tenant(quiet))).json()[
            "value"
        ] == "light"
    finally:
        for _ in range(lanes.cap(noisy)):
            lanes.release(noisy)
    # Nothing of the refused call was written; the lane is usable again.
    missing = await client.get("/settings/theme", headers=as_tenant(noisy))
    assert missing.status_code == 404, missing.text
    again = await client.put("/settings/theme", json={"value": "dark"}, headers=as_tenant(noisy))
    assert again.status_code == 200, again.text


async def test_an_open_breaker_is_a_503_with_retry_after(
    service: Service,
) -> None:
    client, state = service
    tenant = await make_tenant(client, "breaker")
    breaker = state.connections.breaker("postgres")
    for _ in range(breaker.minimum_calls):  # what a failing database leaves in its window
        breaker.record_failure(0.01)
    assert breaker.state is BreakerState.OPEN
    try:
        refused = await client.put(
            "/settings/theme", json={"value": "dark"}, headers=as_tenant(tenant)
        )
    finally:
        breaker.reset()
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["detail"] == "the service could not complete the request"
    served = await client.put("/settings/theme", json={"value": "dark"}, headers=as_tenant(tenant))
    assert served.status_code == 200, served.text


async def test_nested_transactions_join_without_a_second_slot(
    patient_service: Service,
) -> None:
    """A tenant whose cap is 1 still makes changes: the audit trail's writes, the outbox and
    the nested transactions of a change join the change's transaction instead of waiting for a
    second slot of the lane (which would wait for ever, or here fail)."""
    client, state = patient_service
    tenant = await make_tenant(client, "cap-one")
    member = state.connections.primary_member
    assert member is not None
    member.pool.bulkhead.overrides[tenant] = 1
    for n in range(3):
        put = await client.put(f"/settings/k{n}", json={"value": n}, headers=as_tenant(tenant))
        assert put.status_code == 200, put.text
    listed = await client.get("/settings", headers=as_tenant(tenant))
    assert {s["key"] for s in listed.json()} == {"k0", "k1", "k2"}

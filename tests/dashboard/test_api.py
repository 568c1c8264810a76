"""The dashboard's sign-in, its cookie and its data route, over HTTP (ASGI): who may sign in,
what each viewer sees, and how a sign-in ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tenantry.api import create_app
from tenantry.config import Settings
from tenantry.dashboard import COOKIE
from tests.conftest import TOKEN
from tests.support.service import running_app, with_tiers

from .world import ORIGIN, Tenant, make_tenant

OVERVIEW = "/dashboard/api/overview"


@pytest.fixture(scope="module")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    made = create_app(settings)
    async with made.router.lifespan_context(made):
        await made.state.tenantry.dispatcher.close()
        yield made


def browser(app: FastAPI) -> httpx.AsyncClient:
    """A client of its own (its own cookie jar), as a browser on the service's page."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tenantry")


@pytest.fixture(scope="module")
async def tenants(app: FastAPI) -> tuple[Tenant, Tenant]:
    async with browser(app) as client:
        return await make_tenant(client, "dash-a"), await make_tenant(client, "dash-b")


async def test_the_page_and_its_files_are_served_with_a_strict_policy(app: FastAPI) -> None:
    async with browser(app) as client:
        page = await client.get("/dashboard")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert '<script src="/dashboard/static/dashboard.js"' in page.text
        script = await client.get("/dashboard/static/dashboard.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        assert "innerHTML" not in script.text  # figures are set as text, never parsed as HTML
        style = await client.get("/dashboard/static/dashboard.css")
        assert style.headers["content-type"].startswith("text/css")
        for name in ("..%2Fauth.py", "index.html", "auth.py"):  # nothing else is served
            missing = await client.get(f"/dashboard/static/{name}")
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/problem+json"


async def test_sign_in_checks_the_origin(app: FastAPI, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    async with browser(app) as client:
        body = {"token": a.admin_token}
        for headers in ({}, {"Origin": "http://evil.example"}, {"Origin": "null"}):
            refused = await client.post("/dashboard/sign-in", json=body, headers=headers)
            assert refused.status_code == 403, refused.text
            assert COOKIE not in refused.cookies
        assert (await client.get(OVERVIEW)).status_code == 401


async def test_a_tenant_admin_sees_its_tenant_only(
    app: FastAPI, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    async with browser(app) as client:
        signed = await client.post(
            "/dashboard/sign-in", json={"token": a.admin_token}, headers=ORIGIN
        )
        assert signed.status_code == 200, signed.text
        assert signed.json()["tenant"] == a.id
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Path=/dashboard" in cookie
        assert "Secure" not in cookie  # plain http here; over https it is Secure
        for _ in range(3):  # the views: its own, whatever it sends besides
            for extra in ({}, {"X-Tenant-ID": b.id}, {"params": {"tenant": b.id}}):
                params = extra.pop("params", None)
                answer = await client.get(OVERVIEW, headers=extra, params=params)
                assert answer.status_code == 200, answer.text
                data = answer.json()
                assert data["scope"] == {"tenant": a.id, "platform": False}
                assert b.id not in answer.text
                assert b.marker not in answer.text
        tenant_rows = data["business"]["tenants"]
        assert [row["tenant_id"] for row in tenant_rows] == [a.id]
        assert (tenant_rows[0]["sessions"], tenant_rows[0]["users"]) == (2, 2)
        assert data["operations"]["backends"] == {"unavailable": "the backends are the platform's"}
        assert data["performance"]["charts"][0]["key"] == "latency"
        queues = {"pending": 0, "running": 0, "compensating": 0, "parked": 0}
        assert data["operations"]["workflows"] == [{"tenant_id": a.id, "counts": queues}]
        assert data["poll_seconds"] == 5


async def test_revoking_the_session_ends_the_sign_in_at_once(
    app: FastAPI, tenants: tuple[Tenant, Tenant]
) -> None:
    async with browser(app) as client:
        own = await make_tenant(client, "dash-r")
        signed = await client.post(
            "/dashboard/sign-in", json={"token": own.admin_token}, headers=ORIGIN
        )
        assert signed.status_code == 200
        assert (await client.get(OVERVIEW)).status_code == 200
        revoked = await client.delete(
            f"/sessions/{own.admin_session}", headers={**TOKEN, "X-Tenant-ID": own.id}
        )
        assert revoked.status_code == 204, revoked.text
        after = await client.get(OVERVIEW)
        assert after.status_code == 401
        assert after.headers["content-type"] == "application/problem+json"


async def test_who_may_not_sign_in(app: FastAPI, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    async with browser(app) as client:
        for token, status in (
            (a.viewer_token, 403),  # a session of a user without the admin role
            (a.api_key, 403),  # an API key, even with every scope
            ("tnt_s_forged", 401),
            ("not-the-service-token", 401),
        ):
            answer = await client.post("/dashboard/sign-in", json={"token": token}, headers=ORIGIN)
            assert answer.status_code == status, (token[:12], answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert COOKIE not in client.cookies
        # a cookie made up by the browser is refused, not a 500
        client.cookies.set(COOKIE, "p.eyJleHAiOjk5OTk5OTk5OTl9.00", path="/dashboard")
        assert (await client.get(OVERVIEW)).status_code == 401
        client.cookies.set(COOKIE, "s.!!!", path="/dashboard")
        assert (await client.get(OVERVIEW)).status_code == 401


async def test_the_platform_sees_every_tenant_and_signs_out(
    app: FastAPI, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    async with browser(app) as client:
        signed = await client.post(
            "/dashboard/sign-in", json={"token": "test-token"}, headers=ORIGIN
        )
        assert signed.status_code == 200, signed.text
        assert "test-token" not in signed.headers["set-cookie"]  # no secret in the cookie
        assert "Max-Age=28800" in signed.headers["set-cookie"]
        data = (await client.get(OVERVIEW)).json()
        assert data["scope"] == {"tenant": None, "platform": True}
        listed = {row["tenant_id"] for row in data["business"]["tenants"]}
        assert data["business"]["more"] or {a.id, b.id} <= listed
        assert data["operations"]["backends"]["backends"][0]["kind"] == "postgres"
        assert isinstance(data["performance"]["signals"], dict)
        assert data["poll_seconds"] == 15
        out = await client.post("/dashboard/sign-out", headers=ORIGIN)
        assert out.status_code == 204
        assert (await client.get(OVERVIEW)).status_code == 401


async def test_bearer_credentials_reach_the_data_route(
    app: FastAPI, tenants: tuple[Tenant, Tenant]
) -> None:
    """Without the cookie, the API's credentials: the service token alone for every tenant,
    with X-Tenant-ID for one, an admin's session for its tenant; an API key is refused."""
    a, b = tenants
    async with browser(app) as client:
        every = await client.get(OVERVIEW, headers=TOKEN)
        assert every.json()["scope"]["platform"] is True
        one = await client.get(OVERVIEW, headers={**TOKEN, "X-Tenant-ID": b.id})
        assert one.json()["scope"] == {"tenant": b.id, "platform": False}
        own = await client.get(OVERVIEW, headers={"Authorization": f"Bearer {a.admin_token}"})
        assert own.json()["scope"]["tenant"] == a.id
        probe = await client.get(
            OVERVIEW, headers={"Authorization": f"Bearer {a.admin_token}", "X-Tenant-ID": b.id}
        )
        assert probe.status_code == 404  # naming another tenant: a probe, recorded
        key = await client.get(OVERVIEW, headers={"Authorization": f"Bearer {a.api_key}"})
        assert key.status_code == 403
        assert (await client.get(OVERVIEW)).status_code == 401


async def test_over_https_the_cookie_is_secure(
    app: FastAPI, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://tenantry") as client:
        signed = await client.post(
            "/dashboard/sign-in",
            json={"token": a.admin_token},
            headers={"Origin": "https://tenantry"},
        )
        assert signed.status_code == 200, signed.text
        assert "Secure" in signed.headers["set-cookie"]
        # the http page of the same host is another origin
        other = await client.post(
            "/dashboard/sign-in", json={"token": a.admin_token}, headers=ORIGIN
        )
        assert other.status_code == 403


async def test_polling_is_bounded_by_the_tenants_request_rate(
    settings: Settings, tmp_path: Path
) -> None:
    """Every data call of a tenant admin's page goes through the gate: past its tier's rate,
    429 problem+json (the page backs off), never a 500."""
    tiers = with_tiers(tmp_path, "[free]\nrequests_per_second = 8\n")
    async with running_app(settings, tier_policies=tiers) as (_, client):
        own = await make_tenant(client, "dash-rl")
        await asyncio.sleep(1.5)  # the set-up's requests forgotten: a full second's burst
        signed = await client.post(
            "/dashboard/sign-in",
            json={"token": own.admin_token},
            headers={"Origin": "http://t"},  # running_app's client is http://t
        )
        assert signed.status_code == 200, signed.text
        answers = [await client.get(OVERVIEW) for _ in range(12)]
        statuses = [a.status_code for a in answers]
        assert set(statuses) == {200, 429}, statuses
        refused = answers[statuses.index(429)]
        assert refused.headers["content-type"] == "application/problem+json"

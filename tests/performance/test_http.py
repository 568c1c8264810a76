"""The /performance routes: the service token alone; tenants' credentials are refused."""

from __future__ import annotations

import httpx

from tests.conftest import TOKEN


async def test_current_and_analytics_with_the_service_token(client: httpx.AsyncClient) -> None:
    current = await client.get("/performance/current", headers=TOKEN)
    assert current.status_code == 200, current.text
    body = current.json()
    assert body["signals"]["process_rss_bytes"] > 0
    assert {"db_pool_max_size", "cache_l1_bytes"} <= set(body["knobs"])
    assert "available" in body["slow_statements"]
    analytics = await client.get("/performance/analytics?hours=2", headers=TOKEN)
    assert analytics.status_code == 200, analytics.text
    assert "cpu_trend" in analytics.json()["trends"]
    for hours in ("0", "169", "x"):
        bad = await client.get(f"/performance/analytics?hours={hours}", headers=TOKEN)
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")


async def test_optimize_with_the_service_token_and_bad_strategies(
    client: httpx.AsyncClient,
) -> None:
    done = await client.post(
        "/performance/optimize", json={"strategy": "conservative"}, headers=TOKEN
    )
    assert done.status_code == 200, done.text
    assert done.json()["outcome"] in {"unchanged", "kept", "rolled_back"}
    for body in ({"strategy": "reckless"}, {"strategy": "balanced", "extra": 1}):
        bad = await client.post("/performance/optimize", json=body, headers=TOKEN)
        assert bad.status_code == 422, bad.text


async def test_the_routes_refuse_anyone_but_the_operator(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/performance/current"),
        ("GET", "/performance/analytics"),
        ("POST", "/performance/optimize"),
    ):
        anonymous = await client.request(method, path, json={})
        assert anonymous.status_code == 401
        wrong = await client.request(
            method, path, json={}, headers={"Authorization": "Bearer tnt_svc_wrong"}
        )
        assert wrong.status_code == 401

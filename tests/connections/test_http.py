"""HTTP endpoint groups: failover from a refusing endpoint, 5xx and 429 rules, the budget."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from tenantry.config import Settings
from tenantry.connections import BreakerConfig, BreakerState, ConnectionManager, RetryPolicy
from tenantry.db.engine import Database
from tenantry.errors import BackendUnavailable, CircuitOpen, RetryBudgetExhausted
from tests.connections.proxy import HttpServer, free_port

FAST = BreakerConfig(window_size=10, minimum_calls=4, open_duration=30, half_open_max_calls=1)
QUICK = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002)


def manager_for(
    settings: Settings, db: Database, urls: list[str], **options: object
) -> ConnectionManager:
    knobs: dict[str, object] = {
        "breaker": FAST,
        "retry": QUICK,
        "health_interval": 0,
        "redis_url": "",
        "balancer": "round_robin",
        **options,
    }
    return ConnectionManager(
        settings,
        primary=db,
        http_endpoints={"hooks": urls},
        **knobs,  # type: ignore[arg-type]
    )


def mock(handler: object) -> httpx.MockTransport:
    return httpx.MockTransport(handler)  # type: ignore[arg-type]


async def test_requests_go_around_an_endpoint_that_refuses(
    settings: Settings, db: Database
) -> None:
    server = await HttpServer().start()
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    try:
        async with manager_for(settings, db, [dead, server.url]) as manager:
            hooks = manager.http("hooks")
            for n in range(20):
                method = "POST" if n % 2 else "GET"  # a refused connect sent nothing: retry both
                response = await hooks.request(method, "/event", json={"n": n}, tenant="t-a")
                assert response.status_code == 200
                assert response.text == "ok"
            assert server.requests == 20
            assert manager.breaker("hooks/1").state is BreakerState.OPEN
            assert manager.breaker("hooks/2").state is BreakerState.CLOSED
            assert manager.member("hooks/1").stats.calls == FAST.minimum_calls
            assert hooks.pool.gate.in_use == 0
    finally:
        await server.close()


async def test_5xx_is_retried_only_when_idempotent(settings: Settings, db: Database) -> None:
    seen: Counter[str] = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        seen[f"{request.method} {host}"] += 1
        return httpx.Response(503 if host == "bad" else 200)

    manager = manager_for(settings, db, ["http://bad", "http://good"], http_transport=mock(handler))
    async with manager:
        hooks = manager.http("hooks")
        for _ in range(3):  # whichever endpoint comes first, a GET ends on "good"
            assert (await hooks.request("GET", "/x")).status_code == 200
        posts = Counter([(await hooks.request("POST", "/x")).status_code for _ in range(3)])
        assert posts[503] == seen["POST bad"] >= 1  # each POST to "bad" was answered, not retried
        assert posts[200] == seen["POST good"]
        assert (await hooks.request("POST", "/x", idempotent=True)).status_code == 200


async def test_a_tenants_429s_open_only_its_own_breaker(settings: Settings, db: Database) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        limited = request.headers.get("x-workspace") == "noisy"
        return (
            httpx.Response(429, headers={"retry-after": "30"}) if limited else httpx.Response(200)
        )

    manager = manager_for(settings, db, ["http://slack"], http_transport=mock(handler))
    async with manager:
        hooks = manager.http("hooks")
        for _ in range(FAST.minimum_calls):
            response = await hooks.request(
                "POST", "/chat", tenant="noisy", headers={"x-workspace": "noisy"}
            )
            assert response.status_code == 429  # returned, not retried
        with pytest.raises(CircuitOpen, match="for tenant 'noisy'"):
            await hooks.request("POST", "/chat", tenant="noisy", headers={"x-workspace": "noisy"})
        quiet = await hooks.request("POST", "/chat", tenant="quiet", headers={"x-workspace": "q"})
        assert quiet.status_code == 200
        assert manager.breaker("hooks/1").state is BreakerState.CLOSED


async def test_the_retry_budget_stops_a_retry_storm(settings: Settings, db: Database) -> None:
    attempts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        raise httpx.ConnectError("refused", request=request)

    policy = RetryPolicy(
        max_attempts=5, base_delay=0, max_delay=0, budget_ratio=0.1, budget_min_per_second=0.5
    )
    breaker = BreakerConfig(minimum_calls=50, window_size=50)  # keep the breaker out of it
    manager = manager_for(
        settings, db, ["http://a", "http://b"], http_transport=mock(handler), retry=policy,
        breaker=breaker,
    )  # fmt: skip
    async with manager:
        hooks = manager.http("hooks")
        errors: Counter[str] = Counter()
        for _ in range(40):
            try:
                await hooks.request("GET", "/")
            except BackendUnavailable as exc:
                errors[type(exc).__name__] += 1
        # Without a budget: 40 x 5 = 200 attempts. With it: 40 + (5 + 10 % of 40) retries.
        assert attempts == 40 + 5 + 4
        assert errors["RetryBudgetExhausted"] > 0
        assert sum(errors.values()) == 40
        assert issubclass(RetryBudgetExhausted, BackendUnavailable)


async def test_health_checks_use_the_health_path(settings: Settings, db: Database) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500 if request.url.host == "sick" else 200)

    manager = manager_for(
        settings, db, ["http://sick", "http://fine"], http_transport=mock(handler),
        http_health_paths={"hooks": "/healthz"},
    )  # fmt: skip
    async with manager:
        for _ in range(2):  # fall = 2
            await manager.check_health()
        assert not manager.member("hooks/1").health.healthy
        assert manager.member("hooks/2").health.healthy
        hooks = manager.http("hooks")
        for _ in range(4):
            assert (await hooks.request("GET", "/")).status_code == 200  # only "fine" is used
        assert manager.member("hooks/1").stats.calls == 0

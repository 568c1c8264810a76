"""HTTP endpoint groups: one ``httpx.AsyncClient`` per group, balanced across its URLs.

A group (``slack``, ``webhooks``) is a list of base URLs that serve the same API. Each URL is a
member with its own breaker; the group's client and pool (gate and per-tenant bulkhead) are
shared. A request picks a member with the group's balancer, among the members that are healthy
and whose breaker lets calls through (a half-open member is picked first, so it gets its probe
calls); when every member is unhealthy it tries those whose breaker still allows (panic mode).

What counts as a failure of the endpoint: a transport error (no connection, timeout, reset) or
a 5xx answer. A 429 is the tenant's rate limit (Slack limits per workspace): it counts against
the tenant's own breaker only, and is returned, not retried (the caller honours Retry-After).
Connection failures are retried on another member at once (nothing was sent); other transport
errors and 502/503/504 answers only for idempotent methods, with backoff, within the budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tenantry.connections.backends import BreakerConfig, Member, Pool, PoolOptions
from tenantry.connections.balancer import Balancer
from tenantry.connections.guard import choose, guarded
from tenantry.connections.pools import PoolLimits
from tenantry.connections.retry import Retrier
from tenantry.errors import BackendUnavailable, BulkheadFull, CircuitOpen, RetryBudgetExhausted

__all__ = ["HttpEndpoint", "HttpGroup", "http_failure"]

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})


def http_failure(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError | TimeoutError)


class _RetryableStatus(Exception):  # an internal signal: never escapes request()
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class HttpEndpoint(Member):
    """One base URL of a group."""

    kind = "http"

    def __init__(self, name: str, base_url: str, group: HttpGroup, **member: Any) -> None:
        super().__init__(name, role="endpoint", **member)
        self.base_url = base_url.rstrip("/")
        self.group = group

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    async def probe(self) -> None:
        if self.group.health_path is None:
            return  # no health route: the breaker alone judges this endpoint
        response = await self.group.client.get(self.url(self.group.health_path))
        if response.status_code >= 500:
            raise BackendUnavailable(f"{self.name}: health check answered {response.status_code}")

    def snapshot(self) -> dict[str, object]:
        return {**super().snapshot(), "group": self.group.name, "pool": self.group.pool_snapshot()}


class HttpGroup:
    """Endpoints of one API; :meth:`request` balances, guards and retries."""

    def __init__(
        self,
        name: str,
        urls: list[str],
        *,
        limits: PoolLimits,
        breaker: BreakerConfig,
        retrier: Retrier,
        balancer: Balancer,
        pooling: PoolOptions | None = None,
        timeout: float = 5.0,
        health_path: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        **member: Any,
    ) -> None:
        if not urls:
            raise BackendUnavailable(f"HTTP group {name!r} has no endpoint URL")
        self.name = name
        self.health_path = health_path
        self.balancer = balancer
        self.retrier = retrier
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=limits.max_size,
                max_keepalive_connections=limits.min_size,
                keepalive_expiry=30.0,
            ),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
            transport=transport,
        )
        self.pool = Pool(f"http:{name}", limits, pooling, clock=clock)
        self.members = [
            HttpEndpoint(
                f"{name}/{i}",
                url,
                self,
                breaker=breaker,
                tenant_breakers=True,
                clock=clock,
                **member,
            )
            for i, url in enumerate(urls, 1)
        ]

    async def request(
        self,
        method: str,
        path: str = "",
        *,
        tenant: str | None = None,
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send ``method path`` to a member; ``kwargs`` go to ``httpx.AsyncClient.request``.

        Returns the response (also a final 5xx or a 429); raises :class:`CircuitOpen` when no
        member may be called, :class:`BackendUnavailable` when none answered.
        """
        method = method.upper()
        safe = method in IDEMPOTENT if idempotent is None else idempotent
        tried: set[str] = set()

        async def attempt(_: int) -> httpx.Response:
            member = choose(self.members, self.balancer, tried, panic=True)
            tried.add(member.name)
            async with guarded(member, self.pool, tenant, http_failure) as call:
                response = await self.client.request(method, member.url(path), **kwargs)
                if response.status_code >= 500:
                    call.fail()
                elif response.status_code == 429:
                    call.fail(tenant_only=tenant is not None)
            if response.status_code in RETRY_STATUSES and safe:
                raise _RetryableStatus(response)
            return response

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, BulkheadFull):
                return False
            if isinstance(exc, CircuitOpen):  # only another endpoint may help
                return failover()
            if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                return True  # nothing reached the endpoint
            return safe and isinstance(exc, httpx.TransportError | _RetryableStatus)

        def failover() -> bool:
            return any(m.routable and m.name not in tried for m in self.members)

        try:
            return await self.retrier.run(attempt, retryable, failover=failover)
        except _RetryableStatus as final:
            return final.response
        except RetryBudgetExhausted as exc:
            if isinstance(exc.__cause__, _RetryableStatus):
                return exc.__cause__.response
            raise
        except httpx.TransportError as exc:
            raise BackendUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from exc

    def pool_snapshot(self) -> dict[str, object]:
        return self.pool.snapshot()

    async def close(self) -> None:
        await self.client.aclose()

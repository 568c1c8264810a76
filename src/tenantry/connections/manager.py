"""ConnectionManager: named backends, each a pool, behind breakers, balancers and bulkheads.

The backends are the PostgreSQL primary (the app's :class:`~tenantry.db.engine.Database`),
optional read replicas (more ``Database`` objects), Redis, and groups of HTTP endpoints. Writes
go to the primary. Reads go to a replica chosen by the balancer among the healthy ones whose
breaker allows calls; when opening the transaction there fails they move at once to another
replica and then to the primary, and they return to the replica when its health checks pass
again and its half-open probes succeed. Each call passes the tenant's bulkhead lane, the
breaker, and the adaptive pool gate (see ``backends.py``); retries use full-jitter backoff
within one retry budget shared by all backends (see ``retry.py``).

Make it with no arguments for the environment's settings and the process's database, or pass
the app's ``Database``; ``start()`` begins the health checks, ``close()`` ends them and closes
the pools the manager opened (never the primary it was given).

The manager is the primary's :class:`~tenantry.db.engine.TransactionRouter`:
``database.route_through(connections)`` (the app's lifespan does it) sends every transaction the
``Database`` opens, whoever opens it, through the manager; ``close()`` ends the routing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import httpx
from sqlalchemy.engine import URL

from tenantry.config import Settings, load_settings
from tenantry.connections.backends import BreakerConfig, Member, Pool, PoolOptions
from tenantry.connections.balancer import BalancerKind, make_balancer
from tenantry.connections.breaker import BreakerState, CircuitBreaker
from tenantry.connections.guard import guarded
from tenantry.connections.http import HttpGroup
from tenantry.connections.pools import PoolLimits
from tenantry.connections.postgres import DatabaseMember, replica_database
from tenantry.connections.redis_backend import RedisClient, RedisMember, redis_failure
from tenantry.connections.retry import Retrier, RetryBudget, RetryPolicy
from tenantry.connections.routing import DatabaseRouting
from tenantry.connections.schemas import BackendInfo, ConnectionsHealth, RetryBudgetInfo
from tenantry.context import current_tenant
from tenantry.db.default import default_database
from tenantry.db.engine import Database
from tenantry.errors import BackendUnavailable, ConfigError
from tenantry.logging import get_logger

__all__ = ["ConnectionManager"]

T = TypeVar("T")
_log = get_logger("tenantry.connections")
Replicas = Sequence[str | URL | Database] | Mapping[str, str | URL | Database]


class ConnectionManager(DatabaseRouting):
    """Every backend connection of the process. See the module docstring."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        primary: Database | None = None,
        replicas: Replicas | None = None,
        redis_url: str | None = None,
        redis_cluster: bool | None = None,
        http_endpoints: Mapping[str, Sequence[str]] | None = None,
        http_health_paths: Mapping[str, str] | None = None,
        pool_limits: PoolLimits | None = None,
        redis_limits: PoolLimits | None = None,
        http_limits: PoolLimits | None = None,
        balancer: BalancerKind | str | None = None,
        breaker: BreakerConfig | None = None,
        retry: RetryPolicy | None = None,
        tenant_share: float | None = None,
        bulkhead_timeout: float | None = None,
        acquire_timeout: float = 5.0,
        resize_interval: float = 1.0,
        open_timeout: float = 2.0,
        health_interval: float = 2.0,
        health_timeout: float = 1.0,
        rise: int = 2,
        fall: int = 2,
        redis_socket_timeout: float = 1.0,
        http_timeout: float = 5.0,
        http_transport: httpx.AsyncBaseTransport | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Every argument left out comes from ``settings`` (the environment's by default):
        ``replicas`` from ``TENANTRY_READ_REPLICA_URLS``, ``redis_url`` from
        ``TENANTRY_REDIS_URL`` (``""`` means no Redis; with ``redis_cluster``, from
        ``REDIS_CLUSTER_ENABLED``, it is one node of a Redis Cluster), ``http_endpoints`` from
        ``TENANTRY_HTTP_ENDPOINTS``, the balancer, tenant share, bulkhead timeout and breaker from
        their ``TENANTRY_*`` settings. Pool limits default to ``POSTGRES_POOL_SIZE`` (start),
        half of it (floor), and +5 (ceiling); Redis's to ``TENANTRY_REDIS_POOL_SIZE``."""
        self.settings = settings = settings or load_settings()
        replicas = settings.read_replica_urls if replicas is None else replicas
        balancer = settings.read_balancer if balancer is None else balancer
        tenant_share = settings.tenant_pool_share if tenant_share is None else tenant_share
        bulkhead_timeout = (
            settings.bulkhead_timeout if bulkhead_timeout is None else bulkhead_timeout
        )
        if http_endpoints is None:
            http_endpoints = settings.http_endpoints
        redis_limits = redis_limits or PoolLimits.from_pool_size(settings.redis_pool_size)
        breaker = breaker or BreakerConfig(
            failure_rate_threshold=settings.breaker_failure_rate,
            minimum_calls=settings.breaker_minimum_calls,
            window_size=max(50, settings.breaker_minimum_calls),
            open_duration=settings.breaker_open_seconds,
        )
        if not 0 < tenant_share <= 1:
            raise ConfigError("tenant_share must be in (0, 1]")
        limits = pool_limits or PoolLimits.from_pool_size(self.settings.postgres_pool_size)
        self.retry = retry or RetryPolicy()
        self.breaker_config = breaker or BreakerConfig()
        self.health_interval, self.health_timeout = health_interval, health_timeout
        self.budget = RetryBudget(
            ratio=self.retry.budget_ratio,
            min_per_second=self.retry.budget_min_per_second,
            window=self.retry.budget_window,
            clock=clock,
        )
        self._retrier = Retrier(self.retry, self.budget, rng=random.Random(seed))  # noqa: S311
        self._balancer = make_balancer(balancer, seed=seed)
        self._clock = clock
        pooled: dict[str, Any] = {
            "rise": rise,
            "fall": fall,
            "clock": clock,
            "breaker": self.breaker_config,
            "pooling": PoolOptions(
                tenant_share, bulkhead_timeout, acquire_timeout, resize_interval
            ),
        }
        self._db_options = {**pooled, "limits": limits, "open_timeout": open_timeout}
        self._primary_db = primary
        self.primary_member: DatabaseMember | None = None
        if primary is not None:
            self.primary_member = self._primary_from(primary)
        named = (
            replicas.items()
            if isinstance(replicas, Mapping)
            else ((f"postgres-replica-{i}", r) for i, r in enumerate(replicas, 1))
        )
        self.replicas = [
            DatabaseMember(
                name,
                r if isinstance(r, Database) else replica_database(r, limits),
                role="replica",
                owns_database=not isinstance(r, Database),
                **self._db_options,
            )
            for name, r in named
        ]
        url = self.settings.redis_url if redis_url is None else (redis_url or None)
        if redis_cluster is None:
            redis_cluster = self.settings.redis_cluster_enabled
        self.redis_member = (
            RedisMember(
                "redis",
                url,
                limits=redis_limits or limits,
                socket_timeout=redis_socket_timeout,
                connect_timeout=redis_socket_timeout,
                cluster=redis_cluster,
                **pooled,
            )
            if url
            else None
        )
        paths = http_health_paths or {}
        self.http_groups = {
            group: HttpGroup(
                group,
                list(urls),
                limits=http_limits or limits,
                retrier=self._retrier,
                balancer=make_balancer(balancer, seed=seed),
                timeout=http_timeout,
                health_path=paths.get(group),
                transport=http_transport,
                **pooled,
            )
            for group, urls in (http_endpoints or {}).items()
        }
        self._health_task: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Resolve the primary (the process's database by default) and start health checks."""
        await self._primary()
        if self.health_interval > 0 and self._health_task is None:
            self._health_task = asyncio.create_task(
                self._health_loop(), name="tenantry-connections-health"
            )

    async def close(self) -> None:
        """Stop routing the primary's transactions, stop the health checks; close replicas,
        Redis and HTTP clients (not the primary)."""
        if self._closed:
            return
        self._closed = True
        primary = self.primary_member
        if primary is not None and primary.database.router is self:
            primary.database.route_through(None)
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        for replica in self.replicas:
            await replica.close()
        if self.redis_member is not None:
            await self.redis_member.close()
        for group in self.http_groups.values():
            await group.close()

    async def __aenter__(self) -> ConnectionManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- lookup ----------------------------------------------------------------------------------
    @property
    def members(self) -> list[Member]:
        """Every member, in order: primary, replicas, Redis, HTTP endpoints."""
        found: list[Member] = [self.primary_member] if self.primary_member else []
        found += self.replicas
        found += [self.redis_member] if self.redis_member else []
        for group in self.http_groups.values():
            found += group.members
        return found

    @property
    def pools(self) -> list[Pool]:
        """Every pool: one per PostgreSQL server and Redis, one per HTTP group."""
        found = [m.pool for m in [self.primary_member, *self.replicas, self.redis_member] if m]
        return found + [group.pool for group in self.http_groups.values()]

    def member(self, name: str) -> Member:
        for member in self.members:
            if member.name == name:
                return member
        known = ", ".join(m.name for m in self.members)
        raise ConfigError(f"no backend named {name!r}; the backends are: {known}")

    def breaker(self, name: str) -> CircuitBreaker:
        """A backend's breaker: ``postgres``, ``postgres-replica-1``, ``redis``, ``slack/1``."""
        return self.member(name).breaker

    @property
    def redis(self) -> RedisClient | None:
        """The Redis client, one server's or a cluster's (guard calls with
        ``breaker("redis")`` or use :meth:`redis_call`)."""
        return self.redis_member.client if self.redis_member else None

    def http(self, group: str) -> HttpGroup:
        try:
            return self.http_groups[group]
        except KeyError:
            raise ConfigError(f"no HTTP endpoint group {group!r}") from None

    # -- Redis -----------------------------------------------------------------------------------
    async def redis_call(
        self,
        fn: Callable[[RedisClient], Awaitable[T]],
        *,
        tenant: str | None = None,
        retry: bool = True,
    ) -> T:
        """``await fn(client)`` guarded (bulkhead, breaker, pool), retried on connection errors.

        Raises :class:`BackendUnavailable` (or a subclass) when Redis cannot take the call.
        """
        member = self.redis_member
        if member is None:
            raise BackendUnavailable("no Redis is configured (TENANTRY_REDIS_URL)")
        who = tenant if tenant is not None else current_tenant()

        async def attempt(_: int) -> T:
            async with guarded(member, member.pool, who, redis_failure):
                return await fn(member.client)

        try:
            return await self._retrier.run(
                attempt, redis_failure, max_attempts=None if retry else 1
            )
        except Exception as exc:
            if redis_failure(exc) and not isinstance(exc, BackendUnavailable):
                raise BackendUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
            raise

    # -- health ----------------------------------------------------------------------------------
    async def check_health(self) -> None:
        """One round of health checks on every member (the loop runs this every interval); it
        also lets idle pools shrink."""
        await asyncio.gather(*(m.check(self.health_timeout) for m in self.members))
        for pool in self.pools:
            pool.gate.tick()

    def health(self) -> ConnectionsHealth:
        """Every backend's health, breaker and pool use, with no I/O."""
        infos = [BackendInfo.model_validate(m.snapshot()) for m in self.members]
        status = "ok"
        if any(i.health != "healthy" or i.breaker.state is not BreakerState.CLOSED for i in infos):
            status = "degraded"
        if self.primary_member is not None and not self.primary_member.routable:
            status = "down"
        budget = RetryBudgetInfo.model_validate(self.budget.snapshot())
        return ConnectionsHealth(status=status, backends=infos, retry_budget=budget)

    # -- internals -------------------------------------------------------------------------------
    def _primary_from(self, database: Database) -> DatabaseMember:
        return DatabaseMember(
            "postgres", database, role="primary", owns_database=False, **self._db_options
        )

    async def _primary(self) -> DatabaseMember:
        if self.primary_member is None:
            self.primary_member = self._primary_from(await default_database())
        return self.primary_member

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval)
            try:
                await self.check_health()
            except Exception:  # noqa: BLE001 - the loop must outlive any one bad round
                _log.exception("health check round failed")

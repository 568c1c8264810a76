"""Members (what calls go to) and pools (what calls hold).

A :class:`Member` is one PostgreSQL server, the Redis server, or one HTTP endpoint: it has a
circuit breaker, balancer statistics and a health record (HAProxy's rise/fall: ``fall``
failed checks in a row make it unhealthy, ``rise`` passed checks make it healthy again). A
:class:`Pool` is what a call holds while it runs: the :class:`~.pools.PoolGate` over the driver's
connections and the per-tenant :class:`~.bulkhead.Bulkhead`. A PostgreSQL server or Redis is a
member with its own pool; the endpoints of an HTTP group share the group's pool. How a call
passes them is in ``guard.py``.

A member may keep a breaker per tenant besides its own (HTTP endpoints do): a tenant whose calls
fail or are rate-limited (Slack's 429 is per workspace) is then refused alone, and the others'
calls go on.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import StrEnum

from tenantry.connections import breaker as _breaker
from tenantry.connections.balancer import MemberStats
from tenantry.connections.breaker import BreakerListener, BreakerState, CircuitBreaker
from tenantry.connections.bulkhead import Bulkhead
from tenantry.connections.pools import PoolGate, PoolLimits, PoolSizer, ceil_share
from tenantry.logging import get_logger

__all__ = ["BreakerConfig", "Health", "HealthState", "Member", "Pool", "PoolOptions"]

_log = get_logger("tenantry.connections")

#: At most this many per-tenant breakers per member; beyond it closed ones are forgotten.
MAX_TENANT_BREAKERS = 10_000


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """The settings of :class:`CircuitBreaker`, to make many alike (one per backend, tenant)."""

    failure_rate_threshold: float = _breaker.FAILURE_RATE_THRESHOLD
    slow_call_rate_threshold: float = _breaker.SLOW_CALL_RATE_THRESHOLD
    slow_call_duration: float = _breaker.SLOW_CALL_DURATION
    window_size: int = _breaker.WINDOW_SIZE
    minimum_calls: int = _breaker.MINIMUM_CALLS
    open_duration: float = _breaker.OPEN_DURATION
    half_open_max_calls: int = _breaker.HALF_OPEN_MAX_CALLS

    def build(
        self,
        name: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: BreakerListener | None = None,
    ) -> CircuitBreaker:
        knobs = {f.name: getattr(self, f.name) for f in fields(self)}
        return CircuitBreaker(name, clock=clock, on_change=on_change, **knobs)


class HealthState(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class Health:
    """Rise/fall health from checks; starts healthy so that a new member gets traffic."""

    def __init__(self, *, rise: int = 2, fall: int = 2) -> None:
        self.rise, self.fall = rise, fall
        self.state = HealthState.HEALTHY
        self.passed = self.failed = 0
        self.last_error: str | None = None
        self.checks = 0

    @property
    def healthy(self) -> bool:
        return self.state is HealthState.HEALTHY

    def record(self, ok: bool, error: str | None = None) -> bool:
        """Record a check; True when the state changed."""
        self.checks += 1
        if ok:
            self.passed, self.failed = self.passed + 1, 0
            if self.state is HealthState.UNHEALTHY and self.passed >= self.rise:
                self.state, self.last_error = HealthState.HEALTHY, None
                return True
            return False
        self.passed, self.failed, self.last_error = 0, self.failed + 1, error
        if self.state is HealthState.HEALTHY and self.failed >= self.fall:
            self.state = HealthState.UNHEALTHY
            return True
        return False


class Member:
    """One place calls go to: its breaker, balancer statistics and health."""

    kind = "member"

    def __init__(
        self,
        name: str,
        *,
        role: str,
        breaker: BreakerConfig,
        tenant_breakers: bool = False,
        rise: int = 2,
        fall: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.role = role
        self.clock = clock
        self.breaker_config = breaker
        self.breaker = breaker.build(name, clock=clock, on_change=self._breaker_changed)
        self.stats = MemberStats()
        self.health = Health(rise=rise, fall=fall)
        self._tenant_breakers: OrderedDict[str, CircuitBreaker] | None = (
            OrderedDict() if tenant_breakers else None
        )
        self.ok_since_check = self.failed_since_check = 0

    @property
    def routable(self) -> bool:
        """Healthy, and its breaker would let a call through now."""
        return self.health.healthy and self.breaker.available

    def tenant_breaker(self, tenant: str) -> CircuitBreaker | None:
        breakers = self._tenant_breakers
        if breakers is None:
            return None
        breaker = breakers.get(tenant)
        if breaker is None:
            breaker = breakers[tenant] = self.breaker_config.build(
                f"{self.name}/{tenant}", clock=self.clock
            )
            if len(breakers) > MAX_TENANT_BREAKERS:
                for key, old in list(breakers.items())[: len(breakers) // 10]:
                    if old.state is BreakerState.CLOSED:
                        del breakers[key]
        return breaker

    async def probe(self) -> None:
        """One active health check; raises when the member does not answer."""
        raise NotImplementedError

    async def check(self, within: float) -> bool:
        """A health check: passes without I/O when calls succeeded (and none failed) since the
        last check, else runs :meth:`probe` within ``within`` seconds. True when it passed."""
        ok, error = True, None
        if not self.ok_since_check or self.failed_since_check:
            try:
                async with asyncio.timeout(within):
                    await self.probe()
            except Exception as exc:  # noqa: BLE001 - any failure of the probe is the answer
                ok, error = False, f"{type(exc).__name__}: {exc}"[:300]
        self.ok_since_check = self.failed_since_check = 0
        self.record_check(ok, error)
        return ok

    def record_check(self, ok: bool, error: str | None = None) -> None:
        if self.health.record(ok, error):
            level = _log.info if ok else _log.warning
            level("backend health", backend=self.name, state=self.health.state.value, error=error)
            if ok:
                self.stats.reset_latency()

    def snapshot(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "role": self.role,
            "health": self.health.state.value,
            "last_error": self.health.last_error,
            "in_flight": self.stats.in_flight,
            "calls": self.stats.calls,
            "failures": self.stats.failures,
            "latency_ewma_ms": round(self.stats.ewma * 1000, 3),
            "breaker": self.breaker.snapshot(),
        }

    def _breaker_changed(
        self, breaker: CircuitBreaker, old: BreakerState, new: BreakerState
    ) -> None:
        _log.info("breaker", backend=breaker.name, old=old.value, new=new.value)
        if new is BreakerState.CLOSED:
            self.stats.reset_latency()  # P2C would otherwise shun it on its failure history


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """How a pool behaves, besides its size: the tenant's share (its bulkhead cap, as a part of
    the pool's maximum), how long a call waits for its lane and for a slot, and how often the
    size may change."""

    tenant_share: float = 0.5
    bulkhead_timeout: float = 1.0
    acquire_timeout: float = 5.0
    resize_interval: float = 1.0


class Pool:
    """A pool gate and a bulkhead: what a call holds while it runs."""

    def __init__(
        self,
        name: str,
        limits: PoolLimits,
        options: PoolOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        opts = options or PoolOptions()
        self.name = name
        self.limits = limits
        self.options = opts
        sizer = PoolSizer(limits, interval=opts.resize_interval, clock=clock)
        self.gate = PoolGate(name, sizer, timeout=opts.acquire_timeout, clock=clock)
        self.bulkhead = Bulkhead(
            name,
            max_per_tenant=ceil_share(limits.max_size, opts.tenant_share),
            timeout=opts.bulkhead_timeout,
        )

    def snapshot(self) -> dict[str, object]:
        return {"gate": self.gate.snapshot(), "bulkhead": self.bulkhead.snapshot()}

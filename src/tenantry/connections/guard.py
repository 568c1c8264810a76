"""The path of every call: bulkhead lane, breakers, pool slot; and picking a member.

:func:`guarded` returns the async context manager every call runs in. In this order: the
tenant's bulkhead lane (a noisy tenant queues here, in its own line), the member's breaker (and
the tenant's, where the member keeps per-tenant breakers), a slot of the pool gate; then the
call. On the way out it releases everything and records the outcome and duration. Only errors
that ``classify`` calls the backend's fault count as failures (a unique-key violation is a
working database); a cancelled call records nothing and gives its probe slot back.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from tenantry.connections.backends import Member, Pool
from tenantry.connections.balancer import Balancer
from tenantry.connections.breaker import BreakerState
from tenantry.errors import CircuitOpen

__all__ = ["Call", "Classifier", "Guard", "choose", "guarded"]

Classifier = Callable[[BaseException], bool]

M = TypeVar("M", bound=Member)


def choose(
    members: Sequence[M], balancer: Balancer, tried: Collection[str], *, panic: bool = False
) -> M:
    """A routable member, preferring ones not ``tried`` yet; a half-open one first, so that it
    gets the probe calls that can close its breaker. ``panic``: when no member is healthy, use
    those whose breaker still allows calls (health checks can be wrong; breakers see traffic).
    Raises :class:`CircuitOpen` when no member may be called.
    """
    routable = [m for m in members if m.routable]
    if not routable and panic:
        routable = [m for m in members if m.breaker.available]
    if not routable:
        names = ", ".join(m.name for m in members)
        raise CircuitOpen(
            f"no backend may be called now (all unhealthy or open: {names})",
            retry_after=min(m.breaker.retry_in for m in members) if members else None,
        )
    fresh = [m for m in routable if m.name not in tried] or routable
    for member in fresh:
        if member.breaker.state is BreakerState.HALF_OPEN:
            return member
    return balancer.pick(fresh)


class Call:
    """The running call: mark it failed when the answer (not an exception) says so."""

    __slots__ = ("failed", "tenant_failed")

    def __init__(self) -> None:
        self.failed = False
        self.tenant_failed = False

    def fail(self, *, tenant_only: bool = False) -> None:
        """The backend failed (or, ``tenant_only``: only this tenant's use of it, e.g. a 429)."""
        if tenant_only:
            self.tenant_failed = True
        else:
            self.failed = True


class Guard:
    """The async context manager :func:`guarded` returns; entering yields the :class:`Call`."""

    __slots__ = (
        "call",
        "classify",
        "epoch",
        "member",
        "pool",
        "started",
        "tenant",
        "tenant_b",
        "tenant_b_epoch",
    )

    def __init__(
        self, member: Member, pool: Pool, tenant: str | None, classify: Classifier
    ) -> None:
        self.member, self.pool, self.tenant, self.classify = member, pool, tenant, classify
        self.call = Call()
        self.epoch: int | None = None
        self.tenant_b = member.tenant_breaker(tenant) if tenant is not None else None
        self.tenant_b_epoch: int | None = None
        self.started = 0.0

    async def __aenter__(self) -> Call:
        bulkhead, gate = self.pool.bulkhead, self.pool.gate
        if not bulkhead.try_acquire(self.tenant):  # no coroutine when nobody waits
            await bulkhead.acquire(self.tenant)
        try:
            self._admit()
            try:
                if not gate.try_acquire():
                    await gate.acquire()
            except BaseException:
                self._cancel()
                raise
        except BaseException:
            bulkhead.release(self.tenant)
            raise
        self.started = self.member.clock()
        self.member.stats.started()
        return self.call

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        member, call = self.member, self.call
        duration = member.clock() - self.started
        self.pool.gate.release()
        try:
            if exc is not None and not isinstance(exc, Exception):  # cancelled: no outcome
                member.stats.finished(duration)
                self._cancel()
                return
            if exc is not None and self.classify(exc):
                call.failed = True
            member.stats.finished(duration, failed=call.failed)
            member.breaker.settle(self.epoch, duration, failed=call.failed)
            if call.failed:
                member.failed_since_check += 1
            else:
                member.ok_since_check += 1
            if self.tenant_b is not None:
                failed = call.failed or call.tenant_failed
                self.tenant_b.settle(self.tenant_b_epoch, duration, failed=failed)
        finally:
            self.pool.bulkhead.release(self.tenant)

    def _admit(self) -> None:
        member = self.member
        self.epoch = member.breaker.admit()
        if self.epoch is None:
            raise CircuitOpen(
                f"circuit {member.name!r} is open", retry_after=member.breaker.retry_in
            )
        if self.tenant_b is not None:
            self.tenant_b_epoch = self.tenant_b.admit()
            if self.tenant_b_epoch is None:
                member.breaker.cancel(self.epoch)
                raise CircuitOpen(
                    f"circuit {member.name!r} is open for tenant {self.tenant!r}",
                    retry_after=self.tenant_b.retry_in,
                )

    def _cancel(self) -> None:
        self.member.breaker.cancel(self.epoch)
        if self.tenant_b is not None:
            self.tenant_b.cancel(self.tenant_b_epoch)


def guarded(member: Member, pool: Pool, tenant: str | None, classify: Classifier) -> Guard:
    """Bulkhead lane, breakers, pool slot; then record the outcome. See the module docstring."""
    return Guard(member, pool, tenant, classify)

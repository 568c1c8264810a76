"""Where PostgreSQL transactions go: writes to the primary, reads to a replica or the primary.

A read picks a replica with the balancer among the routable ones (healthy, breaker allowing) and
opens its transaction there; if opening fails it moves at once, without backoff, to another
replica, then to the primary (which is retried with backoff). Whatever failed was recorded by
its breaker on the way, so after ``minimum_calls`` failures the replica is skipped without being
tried, until it is half-open and a probe read succeeds. :meth:`run_read` goes further: the whole
read is a function, so a connection lost in the middle of it is retried elsewhere too. Read
transactions are ``READ ONLY`` wherever they run.

Inside an open transaction (the boundary owns it) every call joins it: it opens nothing, takes
no bulkhead slot (a second slot of the tenant's own lane could wait for ever at its cap) and
reads see the transaction's own writes. :meth:`DatabaseRouting.route` is the
:class:`~tenantry.db.engine.TransactionRouter` of the primary ``Database`` when the app routes it
here: every transaction the service opens then takes this path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.connections.balancer import Balancer
from tenantry.connections.guard import choose
from tenantry.connections.postgres import DatabaseMember, OpenTransaction, database_failure
from tenantry.connections.retry import Retrier, RetryPolicy
from tenantry.context import current_tenant, get_tenant
from tenantry.db.engine import joined
from tenantry.errors import BackendUnavailable, BulkheadFull, CircuitOpen

__all__ = ["DatabaseRouting"]

T = TypeVar("T")


class DatabaseRouting:
    """The PostgreSQL half of :class:`~tenantry.connections.manager.ConnectionManager`."""

    replicas: list[DatabaseMember]
    retry: RetryPolicy
    _retrier: Retrier
    _balancer: Balancer

    async def _primary(self) -> DatabaseMember:
        raise NotImplementedError

    def read_transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction without tenant context on a replica (or the primary)."""
        return joined(None) or _Routed(self, False, True, None)

    def tenant_read_transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction as the current tenant on a replica (or the primary)."""
        return joined(get_tenant()) or _Routed(self, True, True, None)

    async def run_read(
        self, fn: Callable[[AsyncConnection], Awaitable[T]], *, tenant_scoped: bool = False
    ) -> T:
        """``await fn(conn)`` in a read transaction, run again elsewhere if the server fails
        (inside an open transaction: once, in it)."""

        async def use(opened: OpenTransaction) -> T:
            async with opened as conn:
                return await fn(conn)

        joining = joined(get_tenant() if tenant_scoped else None)
        if joining is not None:
            async with joining as conn:
                return await fn(conn)
        return await self._on_reader(tenant_scoped, use)

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction without tenant context on the primary (the global tables), in the
        current tenant's bulkhead lane if there is a current tenant."""
        return joined(None) or _Routed(self, False, False, None)

    def tenant_transaction(
        self, *, prologue: str | None = None
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction as the current tenant on the primary: where tenant data is written.
        ``prologue`` as for :meth:`Database.tenant_transaction <tenantry.db.Database>`."""
        return joined(get_tenant(), prologue) or _Routed(self, True, False, prologue)

    def route(
        self, *, scoped: bool, read: bool, prologue: str | None
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A new transaction for a routed ``Database`` (which joins open ones itself)."""
        return _Routed(self, scoped, read, prologue)

    async def _on_primary(self, scoped: bool, prologue: str | None) -> OpenTransaction:
        tenant = get_tenant() if scoped else current_tenant()
        primary = await self._primary()
        return await self._retrier.run(
            lambda _: primary.open(tenant, scoped=scoped, prologue=prologue), _retry_on_primary
        )

    async def _on_reader(self, scoped: bool, use: Callable[[OpenTransaction], Awaitable[T]]) -> T:
        primary = await self._primary()
        tenant = get_tenant() if scoped else current_tenant()
        tried: set[str] = set()
        last: list[DatabaseMember] = [primary]

        async def attempt(_: int) -> T:
            fresh = [r for r in self.replicas if r.name not in tried and r.routable]
            member = choose(fresh, self._balancer, tried) if fresh else primary
            tried.add(member.name)
            last[0] = member
            return await use(await member.open(tenant, scoped=scoped, read_only=True))

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, CircuitOpen):  # a replica's half-open slots went: try another
                return last[0] is not primary
            return _retry_on_primary(exc)

        def failover() -> bool:
            untried = any(r.routable and r.name not in tried for r in self.replicas)
            return untried or primary.name not in tried

        return await self._retrier.run(
            attempt,
            retryable,
            failover=failover,
            max_attempts=len(self.replicas) + self.retry.max_attempts,
        )


def _retry_on_primary(exc: BaseException) -> bool:
    if isinstance(exc, BulkheadFull | CircuitOpen):
        return False
    return database_failure(exc) or isinstance(exc, BackendUnavailable)


async def _opened(opened: OpenTransaction) -> OpenTransaction:
    return opened


class _Routed:
    """A new transaction on the primary (or, ``read``, a replica), entered by ``async with``."""

    __slots__ = ("_opened", "_prologue", "_read", "_routing", "_scoped")

    def __init__(
        self, routing: DatabaseRouting, scoped: bool, read: bool, prologue: str | None
    ) -> None:
        self._routing, self._scoped, self._read, self._prologue = routing, scoped, read, prologue
        self._opened: OpenTransaction | None = None

    async def __aenter__(self) -> AsyncConnection:
        routing = self._routing
        if self._read:
            opened = await routing._on_reader(self._scoped, _opened)
        else:
            opened = await routing._on_primary(self._scoped, self._prologue)
        self._opened = opened
        return opened.connection

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        opened, self._opened = self._opened, None
        if opened is not None:
            await opened.__aexit__(kind, exc, tb)

"""PostgreSQL members: the primary and the read replicas, each a :class:`Database`.

A replica is the same :class:`~tenantry.db.engine.Database` class as the primary, for another
URL (the application role on the replica), so reads on it run in the very same tenant
transaction. This module adds only what the manager needs around it: the guard, a bound on the
time to open a transaction (asyncpg would otherwise wait up to 60 s for an unreachable host),
and the pool figures. A member opens with :meth:`Database.direct_transaction`: the primary may be
routed through the manager itself, and that routing ends here.

The pool itself is SQLAlchemy's: pre-ping is the ``BEGIN`` that opens every transaction (a dead
pooled connection fails there, before anything ran on it, and is replaced; see
``db/engine.py``), connections are recycled after 30 minutes, and a replica's pool keeps
``min_size`` idle connections with ``max_size - min_size`` more as overflow, closed as they come
back (``pool_overflow_idle=0``, where the primary's pool keeps them idle a while): the manager's
:class:`~.pools.PoolGate` decides how many may be used at once, and shrinks an idle pool.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.connections.backends import BreakerConfig, Member, Pool, PoolOptions
from tenantry.connections.guard import Guard, guarded
from tenantry.connections.pools import PoolLimits
from tenantry.db.engine import Database
from tenantry.errors import DatabaseUnavailable

__all__ = ["DatabaseMember", "OpenTransaction", "database_failure", "replica_database"]

#: SQLSTATE classes that mean the server, not the statement, failed: connection exceptions,
#: insufficient resources (too many connections), operator intervention (shutdown, cancel).
_SERVER_STATES = ("08", "53", "57")


def database_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is the database's fault (counts against its breaker)."""
    if isinstance(exc, DatabaseUnavailable | OSError | TimeoutError):
        return True
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        state = str(getattr(exc.orig, "sqlstate", "") or "")
        return exc.connection_invalidated or state.startswith(_SERVER_STATES)
    if isinstance(exc, asyncpg.PostgresError):  # from a statement sent straight to the driver
        return str(exc.sqlstate or "").startswith(_SERVER_STATES)
    return False


def replica_database(url: str | URL, limits: PoolLimits) -> Database:
    """A :class:`Database` for a replica URL, its pool shaped by ``limits``."""
    parsed = make_url(url) if isinstance(url, str) else url
    return Database(
        parsed.set(drivername="postgresql+asyncpg"),
        pool_size=limits.min_size,
        max_overflow=limits.max_size - limits.min_size,
        pool_overflow_idle=0.0,  # the gate sizes a replica's pool: shrinking it closes them
    )


class OpenTransaction:
    """A transaction a member opened, inside its guard; leaving it (``async with``) commits or
    rolls back, then releases the guard (bulkhead lane, breaker, pool slot) with the outcome.

    A driver error from ``COMMIT`` on a connection that died becomes
    :class:`~tenantry.errors.DatabaseUnavailable`. Used once.
    """

    __slots__ = ("connection", "guard", "opening")

    def __init__(
        self,
        guard: Guard,
        opening: AbstractAsyncContextManager[AsyncConnection],
        connection: AsyncConnection,
    ) -> None:
        self.guard, self.opening, self.connection = guard, opening, connection

    async def __aenter__(self) -> AsyncConnection:
        return self.connection

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.opening.__aexit__(kind, exc, tb)  # the body's error, if any, goes on
        except BaseException as failed:  # COMMIT failed, or the body's error was translated
            await self.guard.__aexit__(type(failed), failed, failed.__traceback__)
            if isinstance(failed, _LOST_CONNECTION):
                raise DatabaseUnavailable(f"lost the database connection: {failed}") from failed
            raise
        await self.guard.__aexit__(kind, exc, tb)


#: Raw driver errors that mean the connection died (``Database`` sends ``COMMIT`` on the driver).
_LOST_CONNECTION = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError)


class DatabaseMember(Member):
    """A PostgreSQL server (primary or replica) as a member with its own pool."""

    kind = "postgres"

    def __init__(
        self,
        name: str,
        database: Database,
        *,
        role: str,
        limits: PoolLimits,
        owns_database: bool,
        breaker: BreakerConfig,
        pooling: PoolOptions | None = None,
        open_timeout: float = 2.0,
        **member: Any,
    ) -> None:
        super().__init__(name, role=role, breaker=breaker, **member)
        self.database = database
        self.owns_database = owns_database
        self.open_timeout = open_timeout
        self.pool = Pool(name, limits, pooling, clock=self.clock)

    async def open(
        self,
        tenant: str | None,
        *,
        scoped: bool,
        prologue: str | None = None,
        read_only: bool = False,
    ) -> OpenTransaction:
        """Open a transaction here (as ``tenant`` when ``scoped``; in ``tenant``'s bulkhead lane
        either way), guarded; leaving the returned :class:`OpenTransaction` ends it.

        A failure while opening has already been recorded when it propagates, and nothing is
        left open: the caller may try another member. ``open_timeout`` bounds the opening; with
        a ``prologue``, which may wait for a lock another transaction holds (neither a failure
        of the server nor a reason to retry), the database's ``lock_wait`` is added to it.
        """
        guard = guarded(self, self.pool, tenant, database_failure)
        await guard.__aenter__()
        opening = self.database.direct_transaction(
            tenant if scoped else None,
            prologue=prologue,
            read_only=read_only,
            open_timeout=self.open_timeout,  # plus the lock wait with a prologue
        )
        try:
            conn = await opening.__aenter__()
        except BaseException as exc:
            await guard.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return OpenTransaction(guard, opening, conn)

    async def probe(self) -> None:
        async with self.database.direct_transaction(None, read_only=True) as conn:
            await conn.execute(text("select 1"))

    def driver_pool(self) -> dict[str, int]:
        """The database pool's figures (checked out, idle, configured size, overflow, waiting)."""
        return self.database.pool.stats()

    def snapshot(self) -> dict[str, object]:
        return {
            **super().snapshot(),
            "pool": {**self.pool.snapshot(), "driver": self.driver_pool()},
        }

    async def close(self) -> None:
        if self.owns_database:
            await self.database.dispose()

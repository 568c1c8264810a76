"""The database's connection pool: open connections handed out and taken back without I/O.

Each pooled connection is a SQLAlchemy :class:`AsyncConnection` that stays open (checked out of
an engine that keeps no pool of its own) for the life of the backend connection, with its asyncpg
connection read once. Taking one is a list ``pop`` and giving it back an ``append``: no greenlet,
no pool events, no reset query. SQLAlchemy's own checkout and check-in cost ~60 us of CPU a
transaction here, asyncpg's pool ~175 us (its ``release`` resets the connection with a round
trip); measured in ``benchmarks/README.md``, the choice in ``docs/decisions.md``.

What a pool must do it does:

- at most ``size + overflow`` connections are open (or opening) at once; ``size`` of them stay
  open when idle, the others are closed once they have been idle ``overflow_idle`` seconds
  (:data:`OVERFLOW_IDLE`; checked whenever a connection is given back). Closing one as soon as
  it came back with nobody waiting made a load hovering around ``size`` open and close a
  connection every few transactions (a backend started, the driver's setup, every statement
  prepared again): three connections a saga under a workflow tenant's cap of 16 on a pool of
  10 + 5, most of two CPUs (``benchmarks/README.md``, workflows);
- a caller finding none free waits, first come first served, at most ``timeout`` seconds
  (then :class:`DatabaseUnavailable`); a connection given back goes straight to the first waiter;
- the newest idle connection is handed out first (its backend is warm), and one older than
  ``recycle`` seconds is closed instead of handed out;
- a connection that is broken, invalidated or still inside a transaction is closed, never reused
  (the caller says so with ``reuse=False``; the pool checks the rest).

The pool does no I/O to check a connection before handing it out: the transaction's ``BEGIN``
is the check (:meth:`Database._begin` retries once on a fresh connection when it fails).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.errors import ConfigError, DatabaseUnavailable

__all__ = ["OVERFLOW_IDLE", "ConnectionPool", "Pooled", "driver_connection"]

#: Seconds a connection beyond the pool's ``size`` stays open while idle (see the module).
OVERFLOW_IDLE: Final = 10.0


def driver_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn`` (a pooled one, or one of an open transaction).

    Read synchronously: ``await conn.get_raw_connection()`` reads the same attribute in a greenlet
    of its own, which cost ~90 us a transaction in a tight loop. That attribute would reconnect an
    invalidated connection, a new one outside the transaction: :class:`DatabaseUnavailable`
    instead.
    """
    sync = conn.sync_connection
    if sync is None or sync.invalidated or sync.closed:
        raise DatabaseUnavailable("the database connection was lost")
    return sync.connection.driver_connection


@dataclass(slots=True, eq=False)
class Pooled:
    """A pooled connection: SQLAlchemy's, its asyncpg connection, and when it was opened."""

    conn: AsyncConnection
    driver: Any  # asyncpg.Connection, read once
    opened: float = field(default_factory=time.monotonic)
    idle_since: float = 0.0  # when it was last given back (for the overflow's idle time)

    @classmethod
    def of(cls, conn: AsyncConnection) -> Pooled:
        return cls(conn, driver_connection(conn))

    def reusable(self) -> bool:
        """Open, valid and outside any transaction: safe to hand to the next caller."""
        sync = self.conn.sync_connection
        return (
            sync is not None
            and not sync.invalidated
            and not sync.closed
            and not self.driver.is_closed()
            and not self.driver.is_in_transaction()
        )


class ConnectionPool:
    """Connections made by ``connect``, at most ``size + overflow`` at once (see the module)."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[AsyncConnection]],
        *,
        size: int,
        overflow: int,
        timeout: float,
        recycle: float,
        overflow_idle: float = OVERFLOW_IDLE,
    ) -> None:
        if size < 1 or overflow < 0 or timeout <= 0 or recycle <= 0 or overflow_idle < 0:
            raise ConfigError(
                "pool: size >= 1, overflow >= 0, timeout > 0, recycle > 0 and overflow_idle >= 0"
            )
        self._connect = connect
        self.size = size
        self.limit = size + overflow
        self.timeout = timeout
        self.recycle = recycle
        self.overflow_idle = overflow_idle
        self._idle: list[Pooled] = []
        self._open = 0  # open or being opened
        self._waiters: deque[asyncio.Future[Pooled | None]] = deque()
        self._closed = False

    def stats(self) -> dict[str, int]:
        """Connections checked out, idle, the configured size, open beyond it, and waiters."""
        return {
            "checked_out": self._open - len(self._idle),
            "idle": len(self._idle),
            "size": self.size,
            "overflow": max(0, self._open - self.size),
            "waiting": len(self._waiters),
        }

    async def acquire(self, within: float | None = None) -> Pooled:
        """A connection for one transaction; give it back with :meth:`release`.

        ``within`` seconds bound opening a connection and waiting for one (instead of the pool's
        ``timeout``): :class:`TimeoutError`. Taking an idle one sets no timer, which is why this
        is a parameter and not the caller's ``asyncio.timeout`` (~5-9 us a call).
        """
        while True:
            if self._closed:
                raise DatabaseUnavailable("the database's pool is closed")
            if self._idle:
                pooled = self._idle.pop()
            elif self._open < self.limit:
                return await self._new(within)
            else:
                handed = await self._wait(within)
                if handed is None:  # a connection was closed: its place is free
                    continue
                pooled = handed
            if time.monotonic() - pooled.opened < self.recycle and not pooled.driver.is_closed():
                return pooled
            try:
                await self._close(pooled, wake=False)  # its place is this caller's next try
            except BaseException:  # cancelled meanwhile: the place goes to a waiter after all
                self._wake()
                raise

    async def release(self, pooled: Pooled, *, reuse: bool = True) -> None:
        """Take ``pooled`` back: to the next waiter or the idle list when it can be reused (no
        I/O, so a cancellation cannot cut this short), else closed."""
        if reuse and not self._closed and pooled.reusable():
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(pooled)
                    return
            pooled.idle_since = time.monotonic()
            self._idle.append(pooled)
            await self._trim(pooled.idle_since)
            return
        await self._close(pooled)

    async def _trim(self, now: float) -> None:
        """Close the idle connections beyond ``size`` that have been idle ``overflow_idle``
        seconds, the longest idle first (the idle list's head: the newest is handed out)."""
        while (
            self._open > self.size
            and self._idle
            and now - self._idle[0].idle_since >= self.overflow_idle
        ):
            await self._close(self._idle.pop(0))

    async def close(self) -> None:
        """Close the idle connections; those in use are closed when given back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for pooled in idle:
            await self._close(pooled)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def _new(self, within: float | None) -> Pooled:
        self._open += 1
        try:
            if within is None:
                return Pooled.of(await self._connect())
            async with asyncio.timeout(within):
                return Pooled.of(await self._connect())
        except BaseException:
            self._open -= 1
            self._wake()
            raise

    async def _wait(self, within: float | None) -> Pooled | None:
        waiter: asyncio.Future[Pooled | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.timeout if within is None else within):
                return await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():  # handed over as we were cancelled
                handed = waiter.result()
                if handed is None:
                    self._wake()
                else:
                    await self.release(handed)
            if isinstance(exc, TimeoutError) and within is None:
                raise DatabaseUnavailable(
                    f"no database connection was free within {self.timeout:g} s"
                ) from exc
            raise
        finally:
            if not waiter.done():
                waiter.cancel()

    async def _close(self, pooled: Pooled, *, wake: bool = True) -> None:
        """Close ``pooled`` for good, shielded from cancellation. Its place is free before this
        suspends (``wake``: it goes to the first waiter), so what is given back meanwhile is
        counted right."""
        self._open -= 1
        if wake:
            self._wake()
        await asyncio.shield(self._disconnect(pooled))

    @staticmethod
    async def _disconnect(pooled: Pooled) -> None:
        try:
            await pooled.conn.invalidate()  # asyncpg's close, bounded (2 s), else its terminate
            await pooled.conn.close()
        except Exception:  # noqa: BLE001 - a broken connection is closed as far as it can be
            pooled.driver.terminate()

    def _wake(self) -> None:
        """Tell the first waiter that a place is free (it opens a connection)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

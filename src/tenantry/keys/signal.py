"""Key changes reach every process: ``pg_notify`` in the key transaction, a LISTEN task per process.

A :class:`~tenantry.keys.manager.Keyring` caches unwrapped data keys per process. When a
tenant's keys are destroyed or rotated, the transaction that does it also runs
``pg_notify('tenantry_keys', '<event> <tenant> <version>')``; PostgreSQL delivers it to every
listening session when (and only if) the transaction commits. :class:`KeyListener` holds one
dedicated asyncpg connection (from the :class:`~tenantry.db.engine.Database`'s URL, as the
application role; not a pooled one, which would carry LISTEN back into the pool), and hands each
notification to its :class:`SignalHandler` right away (a destruction is applied before the next
``open``) and then once more, awaited, for slower follow-up work (reloading a rotated tenant).

Staleness stays bounded when a notification is missed: the listener pings its connection every
``interval`` seconds, reconnects with backoff when it is lost and then asks the handler to
``resync`` (reload everything it caches: what happened meanwhile is unknown); every ``interval``
it also lets the handler ``sweep`` (reload entries older than the keyring's ``max_age``).
Works the same on the embedded PostgreSQL and a server; no Redis needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.db.engine import Database
from tenantry.errors import DatabaseUnavailable
from tenantry.logging import get_logger

__all__ = ["CHANNEL", "Event", "KeyListener", "KeySignal", "SignalHandler", "notify"]

#: The notification channel of key changes.
CHANNEL = "tenantry_keys"
Event = Literal["destroyed", "rotated", "root"]
_EVENTS: tuple[Event, ...] = ("destroyed", "rotated", "root")
_log = get_logger("tenantry.keys")


@dataclass(frozen=True, slots=True)
class KeySignal:
    """``destroyed`` (tenant), ``rotated`` (tenant, new data-key version), ``root`` (version)."""

    event: Event
    tenant_id: str | None
    version: int

    def encode(self) -> str:
        return f"{self.event} {self.tenant_id or '-'} {self.version}"

    @classmethod
    def decode(cls, payload: str) -> KeySignal | None:
        """The signal in ``payload``, or None if it is not one (logged, ignored)."""
        parts = payload.split(" ")
        if len(parts) == 3 and parts[2].isdigit():
            event = next((e for e in _EVENTS if e == parts[0]), None)
            if event is not None:
                return cls(event, None if parts[1] == "-" else parts[1], int(parts[2]))
        _log.warning("key signal ignored", payload=payload[:200])
        return None


async def notify(conn: AsyncConnection, signal: KeySignal) -> None:
    """Send ``signal`` when the transaction of ``conn`` commits."""
    await conn.execute(select(func.pg_notify(CHANNEL, signal.encode())))


class SignalHandler(Protocol):
    def signalled(self, signal: KeySignal) -> None:
        """Called as the notification arrives: must be quick and must not fail."""

    async def follow_up(self, signal: KeySignal) -> None:
        """Awaited after :meth:`signalled`, one signal at a time."""

    async def resync(self) -> None:
        """After (re)connecting: notifications may have been missed."""

    async def sweep(self) -> None:
        """Every ``interval`` seconds while connected."""


class KeyListener:
    """LISTEN on :data:`CHANNEL` for one handler, reconnecting when the connection is lost."""

    def __init__(
        self,
        database: Database,
        handler: SignalHandler,
        *,
        interval: float = 5.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self._connect_args = dict(database.engine.dialect.create_connect_args(database.url)[1])
        self._handler = handler
        self._interval = interval
        self._connect_timeout = connect_timeout
        self._queue: asyncio.Queue[KeySignal | None] = asyncio.Queue()
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        #: (Re)connections so far; the first is 1.
        self.connections = 0

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend of the listening connection (None while disconnected)."""
        return None if self._conn is None else int(self._conn.get_server_pid())

    async def start(self) -> None:
        """Connect and LISTEN now (:class:`DatabaseUnavailable` if that fails), then keep at it."""
        if self._task is not None:
            return
        await self._connect()
        self._task = asyncio.create_task(  # no tenant scope or transaction of the caller's
            self._run(), name="tenantry-keys-listener", context=contextvars.Context()
        )

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._disconnect()

    async def _connect(self) -> None:
        try:
            conn = await asyncpg.connect(
                **self._connect_args,
                timeout=self._connect_timeout,
                server_settings={"application_name": "tenantry-keys"},
            )
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            raise DatabaseUnavailable(f"cannot LISTEN for key changes: {exc}") from exc
        try:
            await conn.add_listener(CHANNEL, self._notified)
        except BaseException:
            await conn.close()
            raise
        conn.add_termination_listener(lambda _conn: self._queue.put_nowait(None))
        self._conn = conn
        self.connections += 1

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                async with asyncio.timeout(1.0):
                    await conn.close()
            except Exception:  # noqa: BLE001 - a lost connection fails to close politely
                conn.terminate()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        signal = KeySignal.decode(payload)
        if signal is not None:
            self._handler.signalled(signal)
            self._queue.put_nowait(signal)

    async def _alive(self) -> bool:
        if self._conn is None or self._conn.is_closed():
            return False
        try:
            async with asyncio.timeout(self._interval):
                await self._conn.fetchval("select 1")
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return True

    async def _reconnect(self) -> None:
        await self._disconnect()
        delay = 0.05
        while True:
            try:
                await self._connect()
            except DatabaseUnavailable as exc:
                _log.warning("key listener reconnecting", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._interval)
            else:
                _log.info("key listener reconnected", connections=self.connections)
                return

    async def _run(self) -> None:
        need_resync = True  # loads made before the first LISTEN may be stale already
        while True:
            if need_resync:
                need_resync = not await self._guarded(self._handler.resync())
            signal = None
            try:  # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                async with asyncio.timeout(self._interval):
                    signal = await self._queue.get()
            except TimeoutError:
                pass
            if signal is not None:
                await self._guarded(self._handler.follow_up(signal))
                continue
            if not await self._alive():
                await self._reconnect()
                need_resync = True
                continue
            await self._guarded(self._handler.sweep())

    @staticmethod
    async def _guarded(work: Any) -> bool:
        """Await ``work``; log a failure instead of ending the listener. True if it succeeded."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the listener must outlive a failed reload
            _log.warning("key listener work failed", error=repr(exc))
            return False
        return True

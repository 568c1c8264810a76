"""The application's database handle and its tenant transactions.

Every query of the application runs as the application role, inside a transaction opened by
:meth:`Database.transaction`. For a tenant transaction the opening round trip is::

    BEGIN; SET LOCAL tenantry.tenant_id = '<tenant>'

one simple-protocol message, so the tenant context costs no extra round trip (a separate
``select set_config($1)`` call cost 28-46 % on a point read here). ``SET LOCAL`` is exactly
``set_config(name, value, true)``: the setting lives until ``COMMIT``/``ROLLBACK`` and never
survives into the next use of a pooled connection; as a utility statement it needs no plan and
returns no row, which makes it ~25 us cheaper than ``SELECT set_config(...)`` in the same message.
The simple protocol takes no parameters, so the tenant id is written as a literal. That is safe
because only ids that match ``TENANT_ID_PATTERN`` (``[a-z0-9_-]``: no quote, backslash or
semicolon can occur) get here, and the quoting below doubles quotes regardless.

The engine runs the driver in autocommit mode so that SQLAlchemy sends no ``BEGIN`` of its own:
this module alone opens, commits and rolls back, and a connection that comes back to the pool
still inside a transaction is discarded, never reused.

Inside an open transaction (the boundary owns it) every transaction call joins it, whatever the
``Database``: nothing else is opened. Otherwise a :class:`Database` routed through a
:class:`TransactionRouter` (the app's, through its ``ConnectionManager``) hands each new
transaction to the router, which opens it with :meth:`Database.direct_transaction` on the server
it picked, inside the tenant's bulkhead lane, the breaker and the pool gate; an unrouted one opens
it here. Read transactions (:meth:`Database.tenant_read_transaction`) are ``READ ONLY`` and may be
answered by a replica when routed: for reads that may be a moment stale.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

import asyncpg
from opentelemetry.trace import Span
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tenantry.context import current_tenant, get_tenant, validate_tenant_id
from tenantry.db.pool import OVERFLOW_IDLE, ConnectionPool, Pooled, driver_connection
from tenantry.db.rls import TENANT_SETTING
from tenantry.errors import (
    ConfigError,
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    IsolationViolation,
    ReferenceMissing,
    TenantContextError,
    TenantryError,
    TransactionRolledBack,
)
from tenantry.logging import get_logger
from tenantry.tracing import end_span, start_span

__all__ = [
    "Database",
    "TransactionRouter",
    "begin_statement",
    "joined",
    "translate_error",
]

_log = get_logger("tenantry.db")


#: The longest a transaction's prologue waits for its lock (seconds): past it the server
#: refuses (``lock_timeout``, 55P03), which is :class:`TransactionRolledBack`. A routed opening
#: with a prologue is bounded by this plus the open timeout, so a server that stops answering is
#: noticed there too. Transaction-scoped locks of tenantry's are held for milliseconds.
LOCK_WAIT = 10.0


def begin_statement(
    tenant_id: str | None,
    prologue: str | None = None,
    *,
    read_only: bool = False,
    lock_wait: float = LOCK_WAIT,
) -> str:
    """The statement that opens a transaction, with the tenant context when there is one.

    ``prologue`` (a statement without parameters) is appended to the same message, waiting at
    most ``lock_wait`` seconds for a lock (``lock_timeout`` for the prologue alone).
    """
    if prologue is None and (known := _BEGINS.get((tenant_id, read_only))) is not None:
        return known
    begin = "BEGIN READ ONLY" if read_only else "BEGIN"
    if tenant_id is None:
        statement = begin
    else:
        literal = "'" + validate_tenant_id(tenant_id).replace("'", "''") + "'"
        statement = f"{begin}; SET LOCAL {TENANT_SETTING} = {literal}"
    if prologue is not None:
        wait = f"SET LOCAL lock_timeout = {max(1, round(lock_wait * 1000))}"
        return f"{statement}; {wait}; {prologue}; SET LOCAL lock_timeout TO DEFAULT"
    if len(_BEGINS) >= _BEGINS_KEPT:
        _BEGINS.clear()
    _BEGINS[tenant_id, read_only] = statement
    return statement


#: The opening statements made so far, by (tenant, read only): only valid ids get in.
_BEGINS: dict[tuple[str | None, bool], str] = {}
_BEGINS_KEPT = 4096


@dataclass(slots=True)
class _Open:
    connection: AsyncConnection
    tenant_id: str | None


_ambient: ContextVar[_Open | None] = ContextVar("tenantry_transaction", default=None)
#: A transaction span's attributes besides its tenant (``tenantry.tracing``).
_READ_ONLY = {"db.transaction.read_only": True}
_READ_WRITE = {"db.transaction.read_only": False}


def joined(
    tenant_id: str | None, prologue: str | None = None
) -> AbstractAsyncContextManager[AsyncConnection] | None:
    """The open transaction of this context, to join (None: none is open).

    Joining opens nothing and takes no slot of anything; it refuses another tenant's transaction
    (:class:`TenantContextError`), and runs ``prologue`` as a statement of its own.
    """
    outer = _ambient.get()
    return None if outer is None else _join(outer, tenant_id, prologue)


@asynccontextmanager
async def _join(
    outer: _Open, tenant_id: str | None, prologue: str | None
) -> AsyncIterator[AsyncConnection]:
    if outer.tenant_id != tenant_id:
        raise TenantContextError(
            f"a transaction for tenant {outer.tenant_id!r} is open; cannot use it for {tenant_id!r}"
        )
    if prologue is not None:
        await _simple_query(outer.connection, prologue)
    yield outer.connection


class TransactionRouter(Protocol):
    """Where a routed :class:`Database` sends the transactions it would open itself.

    The ``ConnectionManager`` is one: each transaction passes the current tenant's bulkhead lane,
    the breaker and the pool gate of the server it picks (the primary; for ``read``, a replica
    when there is one), and is opened there with :meth:`Database.direct_transaction`.
    """

    def route(
        self, *, scoped: bool, read: bool, prologue: str | None
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A new transaction, as the current tenant when ``scoped`` (else without tenant context,
        in the current tenant's lane if there is one); ``prologue`` as for
        :meth:`Database.tenant_transaction` (never given with ``read``)."""
        ...


class Database:
    """A pool of connections as the application role, and the transactions on it."""

    def __init__(
        self,
        url: URL,
        *,
        pool_size: int = 10,
        max_overflow: int = 5,
        pool_timeout: float = 30.0,
        pool_recycle: float = 1800.0,
        pool_overflow_idle: float = OVERFLOW_IDLE,
        connect_timeout: float = 10.0,
        lock_wait: float = LOCK_WAIT,
    ) -> None:
        self.url = url
        #: The longest a prologue waits for its lock (see :data:`LOCK_WAIT`).
        self.lock_wait = lock_wait
        # The engine only connects: the pool below keeps its connections open (see db.pool).
        self.engine: AsyncEngine = create_async_engine(
            url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={
                "server_settings": {"application_name": "tenantry"},
                "timeout": connect_timeout,
            },
        )
        self.pool = ConnectionPool(
            self._connect,
            size=pool_size,
            overflow=max_overflow,
            timeout=pool_timeout,
            recycle=pool_recycle,
            overflow_idle=pool_overflow_idle,
        )
        self._on_dispose: list[Callable[[], Awaitable[object]]] = []
        self._router: TransactionRouter | None = None

    @property
    def router(self) -> TransactionRouter | None:
        """Where new transactions go (None: opened here)."""
        return self._router

    def route_through(self, router: TransactionRouter | None) -> None:
        """Send every transaction this database would open through ``router`` (None: open them
        here again). The app routes its database through its ``ConnectionManager``, whose
        primary it is. One router at a time: :class:`ConfigError` if another one is set."""
        if router is not None and self._router not in (None, router):
            raise ConfigError("this database is routed through another router already")
        self._router = router

    def on_dispose(self, close: Callable[[], Awaitable[object]]) -> None:
        """Await ``close`` when this database is disposed, before its pool closes (for what
        runs on the pool in the background, as the audit queue's integration)."""
        self._on_dispose.append(close)

    async def dispose(self) -> None:
        closers, self._on_dispose = self._on_dispose, []
        for close in reversed(closers):
            await close()
        await self.pool.close()
        await self.engine.dispose()

    async def _connect(self) -> AsyncConnection:
        return await self.engine.connect()

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction without tenant context: for the global tables (the tenant registry).

        On tenant tables it sees no rows and cannot write: that is the point.
        Inside an open transaction it joins it (the boundary owns the transaction).
        """
        return self._open(None, None, read=False)

    def tenant_transaction(
        self, *, prologue: str | None = None
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction as the current tenant (:func:`tenantry.context.tenant_scope`).

        ``prologue``, a statement without parameters (literals only), runs first: in the
        opening message (no round trip of its own) when this call opens the transaction, as a
        statement of its own when it joins an open one. The audit log takes its lock this way.
        """
        return self._open(get_tenant(), prologue, read=False)

    def read_transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A ``READ ONLY`` :meth:`transaction` that may run on a read replica when this database
        is routed through one: for reads that may be a moment stale. Joins an open transaction
        (then it sees that transaction's writes)."""
        return self._open(None, None, read=True)

    def tenant_read_transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A ``READ ONLY`` :meth:`tenant_transaction` that may run on a read replica when this
        database is routed through one: for reads that may be a moment stale (never a security
        decision, never reading what the caller just wrote). Joins an open transaction."""
        return self._open(get_tenant(), None, read=True)

    def _open(
        self, tenant_id: str | None, prologue: str | None, *, read: bool
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        outer = _ambient.get()
        if outer is not None:
            return _join(outer, tenant_id, prologue)
        if self._router is not None:
            return self._router.route(scoped=tenant_id is not None, read=read, prologue=prologue)
        return self.direct_transaction(tenant_id, prologue=prologue, read_only=read)

    def direct_transaction(
        self,
        tenant_id: str | None,
        *,
        prologue: str | None = None,
        read_only: bool = False,
        open_timeout: float | None = None,
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A new transaction on this server: never joined to an open one, never routed.

        What a :class:`TransactionRouter` opens on the server it picked; everything else calls
        :meth:`transaction` or :meth:`tenant_transaction`. It becomes the open transaction of
        this context until it ends, so the calls made inside it join it. ``open_timeout`` bounds
        taking a connection (or connecting) and the opening round trip: a server that does not
        answer is :class:`DatabaseUnavailable` in that time, not after the driver's minute. With a
        ``prologue``, which may wait for its lock, the bound is ``open_timeout`` plus
        :attr:`lock_wait`, after which the server has given up on the lock itself.
        """
        if prologue is not None and open_timeout is not None:
            open_timeout += self.lock_wait  # the server gives up on the lock first
        return _Transaction(self, tenant_id, prologue, read_only, open_timeout)

    async def _begin(self, statement: str, within: float | None) -> Pooled:
        """Take a connection and open the transaction on it, in ``within`` seconds if given
        (asyncpg's timer on the round trip; none at all to take an idle connection).

        The ``BEGIN`` doubles as the pool's pre-ping: a pooled connection the server has closed
        fails here, before anything ran on it, so it is dropped and the call retried once.
        """
        pool = self.pool
        deadline = None if within is None else time.monotonic() + within
        for attempt in (1, 2):
            try:
                pooled = await pool.acquire(_left(deadline))
            except TimeoutError as exc:  # ``within``, or the driver's own connect timeout
                raise DatabaseUnavailable(_no_answer(within)) from exc
            except (OSError, DBAPIError) as exc:
                raise DatabaseUnavailable(f"cannot connect to the database: {exc}") from exc
            try:
                await pooled.driver.execute(statement, timeout=_left(deadline))
            except TimeoutError as exc:  # the server did not answer: no retry, it would wait again
                await pool.release(pooled, reuse=False)
                raise DatabaseUnavailable(_no_answer(within)) from exc
            except (
                OSError,
                asyncpg.InterfaceError,
                asyncpg.ConnectionDoesNotExistError,
                asyncpg.InternalClientError,  # left mid-operation (its server restarted under it)
            ) as exc:
                await pool.release(pooled, reuse=False)
                if attempt == 2:
                    raise DatabaseUnavailable(f"lost the database connection: {exc}") from exc
                continue
            except asyncpg.PostgresError as exc:  # a prologue failed (a lock timeout)
                await asyncio.shield(_abort(pool, pooled))
                raise translate_error(exc) from exc
            except BaseException:  # cancelled mid-statement: its state is unknown
                await pool.release(pooled, reuse=False)
                raise
            return pooled
        raise AssertionError("unreachable")


def _no_answer(within: float | None) -> str:
    if within is None:
        return "the database did not answer in time"
    return f"the database did not answer within {within:g} s"


def _left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (None: none); past it, asyncpg and the pool time out at once."""
    return None if deadline is None else deadline - time.monotonic()


class _Transaction:
    """One transaction on a pooled connection: what :meth:`Database.direct_transaction` returns.

    A class rather than a generator-based context manager: it is the hot path of every query.
    """

    __slots__ = (
        "_database",
        "_pooled",
        "_prologue",
        "_read_only",
        "_span",
        "_tenant_id",
        "_timeout",
        "_token",
    )

    def __init__(
        self,
        database: Database,
        tenant_id: str | None,
        prologue: str | None,
        read_only: bool,
        timeout: float | None,
    ) -> None:
        self._database = database
        self._tenant_id = tenant_id
        self._prologue = prologue
        self._read_only = read_only
        self._timeout = timeout
        self._span: Span | None = None

    async def __aenter__(self) -> AsyncConnection:
        # Checked on entering, not on making: whoever enters it (a guard around it) handles the
        # refusal as any failure to open.
        tenant_id = self._tenant_id
        if tenant_id is not None and current_tenant() not in (None, tenant_id):
            raise TenantContextError(
                f"tenant {tenant_id!r} requested inside another tenant's scope"
            )
        statement = begin_statement(
            tenant_id, self._prologue, read_only=self._read_only, lock_wait=self._database.lock_wait
        )
        span = self._span = start_span(
            "db.transaction", tenant_id, _READ_ONLY if self._read_only else _READ_WRITE
        )
        try:
            pooled = await self._database._begin(statement, self._timeout)
        except BaseException as exc:
            end_span(span, exc)
            raise
        self._pooled = pooled
        self._token = _ambient.set(_Open(pooled.conn, self._tenant_id))
        return pooled.conn

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        _ambient.reset(self._token)
        failure = exc  # what the span reports: the block's error, or the closing's
        try:
            pooled, pool = self._pooled, self._database.pool
            if exc is not None:
                await asyncio.shield(_abort(pool, pooled))
                if isinstance(exc, DBAPIError | asyncpg.PostgresError):
                    translated = translate_error(exc)
                    if translated is not exc:
                        raise translated from exc
                elif isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError):
                    # the driver's, used directly (``Repository.fetch_driver``): the connection
                    # died, or was left mid-operation by a server restarted under it
                    raise DatabaseUnavailable(f"lost the database connection: {exc}") from exc
                return
            try:
                status = await pooled.driver.execute("COMMIT")
            except (OSError, asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError) as error:
                await pool.release(pooled, reuse=False)
                raise DatabaseUnavailable(
                    f"the connection was lost at COMMIT; the outcome is unknown: {error}"
                ) from error
            except asyncpg.PostgresError as error:  # deferred constraints, serialization failures
                await asyncio.shield(_abort(pool, pooled))
                raise translate_error(error) from error
            except BaseException:  # cancelled during COMMIT: the connection's state is unknown
                await pool.release(pooled, reuse=False)
                raise
            # Giving back a healthy connection does no I/O, so a cancellation cannot cut it short.
            await pool.release(pooled)
            if status != "COMMIT":
                raise TransactionRolledBack(
                    "the transaction was rolled back: a statement in it failed"
                )
        except BaseException as error:
            failure = error
            raise
        finally:
            end_span(self._span, failure)


async def _abort(pool: ConnectionPool, pooled: Pooled) -> None:
    """Roll back what is open on ``pooled`` and give it back (closed if that failed)."""
    reuse = True
    try:
        if pooled.driver.is_in_transaction():
            await pooled.driver.execute("ROLLBACK")
        sync = pooled.conn.sync_connection
        if sync is not None:
            sync.rollback()  # SQLAlchemy's own bookkeeping: no I/O in autocommit mode
    except Exception:  # noqa: BLE001 - whatever broke, the connection must not be reused
        reuse = False
    await pool.release(pooled, reuse=reuse)


async def _simple_query(conn: AsyncConnection, statement: str) -> None:
    """Run ``statement`` in the simple protocol: it holds literals, so it is not prepared."""
    try:
        await driver_connection(conn).execute(statement)
    except asyncpg.PostgresError as exc:
        raise translate_error(exc) from exc


#: The foreign key every tenant table has on ``tenants.id`` ends so (``tenant_table``'s naming).
_TENANT_FOREIGN_KEY = "_tenant_id_tenants"

#: What a data exception (SQLSTATE class 22) means, in words a client can act on. The server's
#: own text names types, encodings and bytes of the statement: it goes to the log, never out.
_DATA_EXCEPTIONS = {
    "22001": "a value is longer than the database stores",
    "22003": "a number is out of the range the database stores",
    "22007": "a date or time is malformed",
    "22008": "a date or time is out of range",
    "22021": "a text contains a NUL character (\\u0000) or bytes that are not UTF-8",
    "22P02": "a value does not have the form its type needs (JSON has no NaN or Infinity)",
    "22P05": "a text contains a NUL character (\\u0000), which the database cannot store",
}


def translate_error(exc: DBAPIError | asyncpg.PostgresError) -> Exception:
    """Map a driver error to tenantry's hierarchy by SQLSTATE; others pass through unchanged.

    The tenantry error carries a message of its own, never the server's text (which can quote
    the statement's data, and is what a client would see): that stays on the chained cause and
    in the debug log.
    """
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    state = str(getattr(orig, "sqlstate", "") or "")
    message = (str(orig) or type(orig).__name__).splitlines()[0]
    _log.debug("database error", sqlstate=state, message=message)
    if state == "42501" and "row-level security" in message:
        return IsolationViolation("the row is not the current tenant's (row-level security)")
    if state.startswith("22"):
        return InvalidInput(_DATA_EXCEPTIONS.get(state, "a value is not valid for the database"))
    if (translate := _BY_STATE.get(state)) is not None:
        return translate(getattr(orig, "orig", None) or orig)  # asyncpg's, under the adapter's
    if state.startswith("08") or isinstance(orig, OSError) or _broken(exc, orig):
        return DatabaseUnavailable(message)  # a 503: its detail is logged, not answered
    return exc


#: The driver's own errors when its connection broke in the middle of an operation (its server
#: restarted under it): they carry no SQLSTATE, and the statement did not complete.
_BROKEN_CONNECTION = (asyncpg.InternalClientError, asyncpg.ConnectionDoesNotExistError)


def _broken(exc: DBAPIError | asyncpg.PostgresError, orig: object) -> bool:
    """Whether the connection broke: SQLAlchemy invalidated it, or the driver's error under
    the adapter's (its ``__cause__``) is one of :data:`_BROKEN_CONNECTION`."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(orig, _BROKEN_CONNECTION) or isinstance(
        getattr(orig, "__cause__", None), _BROKEN_CONNECTION
    )


def _missing_reference(orig: object) -> TenantryError:
    constraint = str(getattr(orig, "constraint_name", "") or "")
    if not constraint.endswith(_TENANT_FOREIGN_KEY):
        return ReferenceMissing("a row it refers to does not exist")
    tenant = current_tenant()
    return ReferenceMissing(
        "the tenant does not exist" if tenant is None else f"tenant {tenant!r} does not exist"
    )


def _missing_value(orig: object) -> TenantryError:
    column = getattr(orig, "column_name", None)
    return InvalidInput(f"a required value{f' ({column})' if column else ''} is missing")


#: Integrity and transaction failures (SQLSTATE classes 23 and 40), by state; each reads the
#: fields asyncpg gives (``constraint_name``, ``column_name``), never the message.
_BY_STATE: dict[str, Callable[[object], TenantryError]] = {
    "23503": _missing_reference,
    "23502": _missing_value,
    "23514": lambda _: InvalidInput(
        "a value breaks a rule of the database (it is malformed or out of range)"
    ),
    "23505": lambda _: Conflict("a row with the same key exists already"),
    "40001": lambda _: TransactionRolledBack("serialization failure, retry the transaction"),
    "55P03": lambda _: TransactionRolledBack("a lock was held too long, retry the transaction"),
    "40P01": lambda _: TransactionRolledBack("deadlock, retry the transaction"),
}

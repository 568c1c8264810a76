"""The audit log's queue: managers audit a change without waiting on the tenant's tree.

Appending to a tenant's tree is serialized (one sequence, no forks), so an entry appended inside
the transaction of the change it records would hold the tenant's tree lock until that change
commits, and every audited change of a tenant would wait for the one before. Instead:

- :meth:`AuditOutbox.enqueue` writes the entry to ``audit_pending`` in the change's transaction
  (one INSERT, sealed with the tenant's data key to ``audit_pending/<id>``): it commits or rolls
  back with the change, and concurrent changes do not wait on each other. An entry that cannot
  be written fails the change with :class:`~tenantry.errors.AuditUnavailable`.
- One crossing: an entry for the *platform's* tree may be queued from inside another tenant's
  transaction, to commit with a change of that tenant that the platform records (its key
  changes: see ``SecurityManager``). Row-level security keeps that transaction to its tenant's
  rows, so the row goes through ``tenantry.queue_platform_entry`` (migration 0009), which
  inserts a ``platform`` row and nothing else; the entry is sealed with the platform's data key
  outside the tenant's scope.
- :meth:`AuditOutbox.integrate` moves a tenant's queued entries into its tree in one
  transaction: ``DELETE ... RETURNING`` takes them (its row locks keep two integrators from
  taking the same ones), they are opened, checked against their leaf hash, and appended in queue
  order (:meth:`AuditLog.append_many`, joined to that transaction). An entry is moved exactly
  once: it is never lost and never appended twice, whichever process integrates it.
- Integration runs after commit, in a background task of the process that queued (a few tries
  over the next seconds, for changes whose transaction is still open), and before every read
  of the tree (``AuditLog.before_read``), so readers see every committed entry.

An entry that cannot be opened any more (the tenant's keys were destroyed while it waited)
stays queued and is logged, and reads go on without it; ``SecurityManager.destroy_tenant_keys``
integrates first. An altered queued entry (its leaf hash does not match) fails the read with
:class:`~tenantry.errors.AuditVerificationError` naming it.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from weakref import WeakSet

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import Row

from tenantry.audit.manager import AuditCipher, AuditLog
from tenantry.audit.merkle import leaf_hash
from tenantry.audit.models import audit_pending
from tenantry.audit.repository import lock_statement
from tenantry.audit.schemas import AuditEntry
from tenantry.context import PLATFORM_TENANT, current_tenant, tenant_scope, validate_tenant_id
from tenantry.db.engine import Database
from tenantry.db.repository import DriverQuery, Repository
from tenantry.errors import (
    AuditUnavailable,
    AuditVerificationError,
    BackendUnavailable,
    DatabaseUnavailable,
    DecryptionError,
    InvalidInput,
    TenantryError,
    TransactionRolledBack,
)
from tenantry.logging import get_logger

__all__ = ["RETRIES", "AuditOutbox"]

_log = get_logger(__name__)
_T = f'"{audit_pending.schema}"."{audit_pending.name}"'
_INSERT = DriverQuery.of(
    f"INSERT INTO {_T} (tenant_id, id, leaf_hash, entry) VALUES (:t, :id, :leaf, :entry)"
)
_QUEUE_PLATFORM = DriverQuery.of(
    f'SELECT "{audit_pending.schema}".queue_platform_entry(:id, :leaf, :entry)'
)
_TAKE = text(
    f"DELETE FROM {_T} WHERE (tenant_id, id) IN"
    f" (SELECT tenant_id, id FROM {_T} ORDER BY queued_at, id LIMIT :limit)"
    " RETURNING id, leaf_hash, entry, queued_at"
)
_COUNT = text(f"SELECT count(*) FROM {_T}")
#: Seconds after a queued entry at which its process tries to integrate the tenant's queue.
RETRIES = (0.01, 0.05, 0.25, 1.0, 4.0)
#: Failures of an integration that say the database is busy or away for now (a full bulkhead
#: lane, an open breaker, a lost connection, a rolled-back transaction): a warning each, not a
#: traceback at every retry; anything else is logged with its traceback.
_PASSING = (BackendUnavailable, DatabaseUnavailable, TransactionRolledBack)


def _record_id(pending_id: str) -> str:
    return f"audit_pending/{pending_id}"


def _not_written(tenant_id: str, exc: Exception) -> AuditUnavailable:
    """The error of an entry the database refused (the server's text goes to the log only)."""
    orig = exc if isinstance(exc, asyncpg.PostgresError) else exc.__cause__
    state = str(getattr(orig, "sqlstate", "") or "")
    _log.warning("audit entry not written", tenant=tenant_id, sqlstate=state)
    _log.debug("audit entry not written", tenant=tenant_id, error=str(orig))
    return AuditUnavailable(
        f"the audit log of tenant {tenant_id!r} could not take the change's entry, so the "
        "change was not made"
    )


class AuditOutbox:
    """The queue in front of ``audit_log``, sealed with ``cipher`` (the tenant keyring)."""

    def __init__(
        self,
        audit_log: AuditLog,
        cipher: AuditCipher,
        *,
        prepare: Callable[[str], Awaitable[None]] | None = None,
        batch: int = 500,
    ) -> None:
        self.audit_log = audit_log
        self.cipher = cipher
        #: Awaited before an integration's transaction: loads the tenant's keys, so opening and
        #: sealing inside it never waits for a second pooled connection.
        self.prepare = prepare
        self.batch = batch
        self._due: dict[str, tuple[float, int]] = {}  # tenant -> (next try, tries made)
        self._closes_with: WeakSet[Database] = WeakSet()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        #: Tenants this process queued entries for since the last :meth:`take_queued`.
        self._queued: set[str] = set()

    async def enqueue(self, tenant_id: str, entry: AuditEntry) -> str:
        """Queue ``entry`` for ``tenant_id``'s tree; inside a tenant scope, in its transaction."""
        validate_tenant_id(tenant_id)
        if entry.tenant != tenant_id:
            entry = entry.model_copy(update={"tenant": tenant_id})
        try:
            data = entry.canonical()
        except ValueError as exc:  # no canonical form (a float in ``detail``)
            raise InvalidInput(f"invalid audit entry: {exc}") from None
        pending_id = uuid.uuid4().hex
        seal = self.cipher.seal(tenant_id, data, _record_id(pending_id))
        scope = current_tenant()
        if scope is not None and scope != tenant_id == PLATFORM_TENANT:
            # From another tenant's transaction: sealed outside its scope, queued by the function.
            sealed = await asyncio.create_task(seal, context=contextvars.Context())
            statement = _QUEUE_PLATFORM
        else:  # (in another tenant's scope, sealing raises TenantContextError)
            scope, sealed, statement = tenant_id, await seal, _INSERT
        params = {"t": tenant_id, "id": pending_id, "leaf": leaf_hash(data), "entry": sealed}
        db = await self.audit_log._db()
        self.close_with(db)
        with tenant_scope(scope):
            async with db.tenant_transaction() as conn:
                try:
                    await Repository(conn).execute_driver(statement, params)
                except (TenantryError, asyncpg.PostgresError) as exc:  # the database refused it
                    raise _not_written(tenant_id, exc) from exc
        self._queued.add(tenant_id)
        self._schedule(tenant_id)
        return pending_id

    def take_queued(self) -> set[str]:
        """The tenants this process queued entries for since the last call."""
        queued, self._queued = self._queued, set()
        return queued

    async def backlog(self, tenant_id: str) -> int:
        """How many of ``tenant_id``'s entries are committed to the queue and not yet in its
        tree (whichever process queued them): the audit backlog."""
        validate_tenant_id(tenant_id)
        db = await self.audit_log._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                return int(await conn.scalar(_COUNT) or 0)

    async def integrate(self, tenant_id: str) -> int:
        """Move the tenant's committed queue into its tree; how many entries were moved."""
        validate_tenant_id(tenant_id)
        if current_tenant() is not None:
            return 0  # inside a tenant transaction: its own queued rows are not committed yet
        moved = 0
        while True:
            try:
                taken = await self._integrate_batch(tenant_id)
            except DecryptionError:  # keys destroyed meanwhile: reads go on without them
                _log.warning("queued audit entries no longer open", tenant=tenant_id)
                return moved
            moved += taken
            if taken < self.batch:
                return moved

    async def _integrate_batch(self, tenant_id: str) -> int:
        if self.prepare is not None:
            await self.prepare(tenant_id)
        db = await self.audit_log._db()
        with tenant_scope(tenant_id):
            # The tree's lock first (the append below takes it again, a no-op): integrations of
            # one tenant take turns, so two never take the queue's rows at once, which could
            # deadlock on them (each DELETE locking the rows in its own order).
            async with db.tenant_transaction(prologue=lock_statement(tenant_id)) as conn:
                taken = (await conn.execute(_TAKE, {"limit": self.batch})).all()
                if not taken:
                    return 0
                rows = sorted(taken, key=lambda r: (r.queued_at, r.id))
                entries = await self._open(tenant_id, rows)
                await self.audit_log.append_many(tenant_id, entries)
        return len(rows)

    async def _open(self, tenant_id: str, rows: Sequence[Row[Any]]) -> list[AuditEntry]:
        entries = []
        for row in rows:
            data = await self.cipher.open(tenant_id, bytes(row.entry), _record_id(row.id))
            if leaf_hash(data) != bytes(row.leaf_hash):
                raise AuditVerificationError(f"queued audit entry {row.id} was altered")
            entries.append(AuditEntry.from_canonical(data))
        return entries

    # -- the background integration --------------------------------------------------------

    def _schedule(self, tenant_id: str) -> None:
        due = time.monotonic() + RETRIES[0]
        current = self._due.get(tenant_id)
        self._due[tenant_id] = (min(due, current[0]) if current else due, 0)
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            # A context of its own: the caller's (its tenant scope, its open transaction) must
            # not follow the task.
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), context=contextvars.Context())
        assert self._wake is not None  # noqa: S101 - made with the task
        self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None  # noqa: S101
        while self._due:  # then the task ends; the next queued entry starts another
            wait = min(at for at, _ in self._due.values()) - time.monotonic()
            if wait > 0:
                self._wake.clear()
                try:
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                continue
            now = time.monotonic()
            for tenant_id, (at, tries) in list(self._due.items()):
                if at > now:
                    continue
                try:
                    await self.integrate(tenant_id)
                except _PASSING as exc:  # a busy or unreachable database: retried, no traceback
                    _log.warning(
                        "audit queue integration deferred",
                        tenant=tenant_id,
                        reason=type(exc).__name__,
                        retry=tries + 1 < len(RETRIES),
                    )
                except Exception:  # noqa: BLE001 - retried; a reader integrates anyway
                    _log.exception("audit queue integration failed", tenant=tenant_id)
                if self._due.get(tenant_id) != (at, tries):
                    continue  # queued again meanwhile: its new schedule stands
                if tries + 1 < len(RETRIES):
                    self._due[tenant_id] = (now + RETRIES[tries + 1], tries + 1)
                else:
                    del self._due[tenant_id]

    def close_with(self, database: Database) -> None:
        """Close this queue (integrating it a last time) when ``database`` is disposed, before
        its pool closes; once per database (the queue does it for the database it writes to)."""
        if database not in self._closes_with:
            self._closes_with.add(database)
            database.on_dispose(self.close)

    async def close(self) -> None:
        """Stop the background task, integrating what this process queued one last time."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for tenant_id in list(self._due):
            try:
                await self.integrate(tenant_id)
            except Exception:  # noqa: BLE001 - left queued for the next reader
                _log.exception("audit queue integration failed", tenant=tenant_id)
        self._due.clear()

"""AuditTrail: how every manager records its state changes (DESIGN invariant 7).

A manager calls :meth:`AuditTrail.record` inside the transaction of the change, in the tenant's
scope: the entry is queued in that transaction (:mod:`~tenantry.audit.outbox`), so it
commits or rolls back with the change it records, a change whose entry cannot be written does
not happen, and concurrent changes of a tenant do not wait on its tree. The queue reaches the
tree right after commit, and before any read of it. Entries are sealed with the tenant's data key
(:class:`KeyringAuditCipher`), so crypto-shredding leaves only their hashes. Changes to the
tenant registry go to the platform's tree (tenant ``platform``), and so do key changes, recorded
from inside the tenant's own key transaction (the one crossing the queue allows, see
:mod:`~tenantry.audit.outbox`).

``actor`` is who asked for the change (the HTTP routes pass the caller's principal id; a library
call without one is recorded as ``system``); the request id comes from the request's log
context when there is one.

A manager gets its trail with ``await self._trail(tenant)`` *before* it opens the transaction:
that loads the tenant's keys (their own short transaction, on another connection), so sealing
inside the change's transaction does no I/O and never waits for a second pooled connection.

Managers know the trail only as :class:`~tenantry.db.changes.ChangeLog` (the tenant registry sits
below this domain). Those made without one use :func:`trail_for` their database, which the
package registers with :func:`~tenantry.db.changes.provide_change_logs`: one trail, keyring and
audit log per :class:`~tenantry.db.engine.Database`, the one the app registered with
:func:`use_trail` when it made them, else one with the environment's root key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

import structlog
from pydantic import ValidationError

from tenantry.audit.manager import AuditLog
from tenantry.audit.outbox import AuditOutbox
from tenantry.audit.schemas import AuditEntry
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput
from tenantry.keys.manager import Keyring

__all__ = [
    "AUDIT_PURPOSE",
    "SYSTEM_ACTOR",
    "AuditTrail",
    "KeyringAuditCipher",
    "audit_entry",
    "trail_for",
    "use_trail",
]

AUDIT_PURPOSE = "audit_entries.entry"
#: The actor of changes made by library calls that name none.
SYSTEM_ACTOR = "system"


class KeyringAuditCipher:
    """Seals audit entries with the tenant's data key, bound to the entry's sequence number."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    async def seal(self, tenant_id: str, data: bytes, record_id: str) -> bytes:
        return await self.keyring.encrypt(
            tenant_id, data, purpose=AUDIT_PURPOSE, record_id=record_id
        )

    async def open(self, tenant_id: str, data: bytes, record_id: str) -> bytes:
        return await self.keyring.decrypt(
            tenant_id, data, purpose=AUDIT_PURPOSE, record_id=record_id
        )


class AuditTrail:
    """The audit log and the keyring that seals it, as the managers use them."""

    def __init__(self, audit_log: AuditLog, keyring: Keyring) -> None:
        self.audit_log = audit_log
        self.keyring = keyring
        self.outbox = AuditOutbox(audit_log, KeyringAuditCipher(keyring), prepare=self.prepare)
        audit_log.before_read = self.outbox.integrate

    @classmethod
    def for_database(cls, database: Database | None, keyring: Keyring | None = None) -> AuditTrail:
        """A trail on ``database`` (None: the process's default) sealed by ``keyring`` (default:
        a keyring of its own, with the environment's root key)."""
        if keyring is None:
            keyring = Keyring(database)
        return cls(AuditLog(database, cipher=KeyringAuditCipher(keyring)), keyring)

    async def prepare(self, tenant_id: str) -> None:
        """Load ``tenant_id``'s keys, unless they are loaded and fresh (TenantNotFound if it
        does not exist)."""
        await self.keyring.load(tenant_id)

    async def record(
        self,
        tenant_id: str,
        action: str,
        resource: str = "",
        *,
        actor: str | None = None,
        outcome: str = "success",
        frameworks: Sequence[str] = (),
        detail: dict[str, Any] | None = None,
    ) -> str:
        """Queue an entry for ``tenant_id``'s tree (in the open transaction, if there is one);
        returns its queue id."""
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        entry = audit_entry(
            tenant_id,
            action,
            resource,
            actor=actor or SYSTEM_ACTOR,
            outcome=outcome,
            request_id=request_id if isinstance(request_id, str) else None,
            frameworks=frameworks,
            detail=detail,
        )
        return await self.outbox.enqueue(tenant_id, entry)


def audit_entry(
    tenant_id: str,
    action: str,
    resource: str = "",
    *,
    actor: str,
    outcome: str = "success",
    request_id: str | None = None,
    frameworks: Sequence[str] = (),
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """An entry of ``tenant_id``'s tree; :class:`InvalidInput` naming what is wrong."""
    try:
        return AuditEntry(
            actor=actor,
            action=action,
            resource=resource,
            tenant=tenant_id,
            outcome=outcome,
            request_id=request_id,
            frameworks=tuple(frameworks),
            detail=detail or {},
        )
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        raise InvalidInput(f"invalid audit entry: {problems}") from None


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    return f"{'.'.join(map(str, loc))}: {message}"


_trails: WeakKeyDictionary[Database, AuditTrail] = WeakKeyDictionary()


def use_trail(database: Database, trail: AuditTrail) -> None:
    """Make ``trail`` the one :func:`trail_for` gives for ``database`` (the app does this)."""
    _trails[database] = trail
    trail.outbox.close_with(database)


def trail_for(database: Database) -> AuditTrail:
    """The trail of ``database``: the registered one, else one made on first use and kept."""
    trail = _trails.get(database)
    if trail is None:
        trail = _trails[database] = AuditTrail.for_database(database)
        trail.outbox.close_with(database)
    return trail

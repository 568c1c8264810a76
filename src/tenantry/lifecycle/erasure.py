"""Erasure of a deleted tenant: its rows deleted, its keys destroyed (crypto-shredding), its audit
tree kept as hashes, and a report that proves it, every fact read back from the database.

The tenant must be ``deleted`` first (a status change of its own, audited, refused at the
boundary from then on; no worker claims a deleted tenant's workflows, and the background rounds
leave it alone but for the behaviour learner, which drops its samples and model); the reserved
tenants are never erased. Then:

1. its committed audit queue is integrated into its tree, while the entries still open;
2. its rows are deleted from every tenant table (:func:`~tenantry.db.rls.tenant_tables`: a new
   table is erased without new code), children before parents, in batches of :data:`BATCH`, each
   batch a transaction of the tenant's that first takes the tenant's audit-tree lock
   (:func:`~tenantry.audit.lock_statement`), so it takes turns with the audit queue's integration
   instead of locking rows in another order (a deadlock seen in CI). Kept: the audit tree
   (``audit_entries``, ``audit_nodes``, ``audit_checkpoints``: hashes, and payloads sealed with the
   tenant's keys) and ``tenant_keys`` (its rows become the destroyed keys' tombstones). Passes
   repeat, up to :data:`PASSES`, while counting finds rows that arrived meanwhile;
3. its keys are destroyed (:meth:`SecurityManager.destroy_tenant_keys`, which integrates the queue
   again first); queued entries that could not be integrated before that open no more, and are
   dropped (counted in the report);
4. its tree gets a signed checkpoint, and is verified (:meth:`AuditLog.verify`: every leaf, every
   checkpoint and consistency proof), with its payloads unreadable; the newest entry is opened by
   a keyring that reads the keys from the database anew: it opened before the keys were
   destroyed, and fails with :class:`~tenantry.errors.KeysDestroyed` after;
5. the platform's own provisioning workflows of the tenant (their input names its display name
   and first admin: personal data) are deleted, when they are finished;
6. the report is recorded as ``tenant.erase`` on the platform's audit tree (its SHA-256 and
   counts). The registry row stays, status ``deleted``: ids are never reused.

Running it again on an erased tenant finds nothing to delete and no key to destroy, and answers
the same kind of report.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Table, delete, select, text, tuple_

from tenantry.audit import KeyringAuditCipher, lock_statement
from tenantry.cache import CacheManager
from tenantry.context import (
    PLATFORM_TENANT,
    RESERVED_TENANTS,
    current_tenant,
    tenant_scope,
    validate_tenant_id,
)
from tenantry.db.bootstrap import quote_ident
from tenantry.db.changes import ChangeLog
from tenantry.db.engine import Database
from tenantry.db.inspect import read_tenant_tables
from tenantry.db.metadata import SCHEMA
from tenantry.db.rls import tenant_tables
from tenantry.errors import Conflict, DecryptionError, TenantContextError, TransactionRolledBack
from tenantry.keys import Keyring
from tenantry.lifecycle.provisioning import PROVISIONING
from tenantry.logging import get_logger
from tenantry.security import SecurityManager
from tenantry.tenants import TenantRegistry, TenantStatus

__all__ = [
    "BATCH",
    "KEPT_TABLES",
    "PASSES",
    "AuditAfterErasure",
    "ErasureReport",
    "KeysAfterErasure",
    "TableErasure",
    "erase",
]

_log = get_logger(__name__)

#: Tables that keep the erased tenant's rows, and why.
KEPT_TABLES: Final = {
    "audit_entries": "audit tree: leaf hashes, payloads sealed with the destroyed keys",
    "audit_nodes": "audit tree: subtree hashes",
    "audit_checkpoints": "audit tree: signed tree heads",
    "tenant_keys": "tombstones of the destroyed keys (no key material)",
}
#: The audit queue: integrated before the keys go; what could not be is dropped after.
_QUEUE: Final = "audit_pending"
#: Rows a deleting transaction takes at most.
BATCH: Final = 5000
#: Deletion passes at most, while rows keep arriving (from work that was under way).
PASSES: Final = 3
_RETRIES: Final = 5  # a batch refused as a deadlock or serialization failure is tried again
_ACTION: Final = "tenant.erase"


@dataclass(frozen=True, slots=True)
class TableErasure:
    """One tenant table: rows the erasure deleted, rows of the tenant counted after it, and why
    the table keeps rows (None: it must keep none)."""

    table: str
    deleted: int
    left: int
    kept: str | None = None


@dataclass(frozen=True, slots=True)
class AuditAfterErasure:
    """The tenant's audit tree after erasure, verified (``AuditLog.verify``)."""

    size: int
    root_hash: str
    verified: bool
    entries_checked: int
    payloads_unavailable: int
    checkpoints_checked: int
    problems: tuple[str, ...]
    #: The newest entry, opened before and after the keys were destroyed (None: empty tree).
    probe_seq: int | None
    probe_opened_before: bool | None
    probe_error_after: str | None
    #: Queued entries that could not be integrated before the keys went (unreadable, dropped).
    queue_dropped: int


@dataclass(frozen=True, slots=True)
class KeysAfterErasure:
    """The tenant's key rows after erasure, read from the database."""

    keys: int
    destroyed: int
    destroyed_now: int
    #: What a keyring that reads the keys anew answers for the tenant's ciphertexts.
    error: str | None


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What :func:`erase` did and found; :attr:`erased` when nothing of the tenant is readable."""

    tenant_id: str
    status: str
    started_at: datetime
    finished_at: datetime
    passes: int
    tables: tuple[TableErasure, ...]
    audit: AuditAfterErasure
    keys: KeysAfterErasure
    cache_entries_dropped: int
    #: the platform's provisioning workflows of the tenant deleted (they name its first admin)
    platform_workflows_deleted: int = 0

    @property
    def rows_deleted(self) -> int:
        return sum(t.deleted for t in self.tables)

    @property
    def rows_left(self) -> int:
        """Rows of the tenant left in the tables that must keep none (0 once erased)."""
        return sum(t.left for t in self.tables if t.kept is None)

    @property
    def erased(self) -> bool:
        """No row left outside the kept tables, a tree that verifies and does not open, every
        key destroyed."""
        audit, keys = self.audit, self.keys
        return (
            self.status == TenantStatus.DELETED.value
            and self.rows_left == 0
            and audit.verified
            and audit.payloads_unavailable == audit.size
            and (audit.probe_seq is None or audit.probe_error_after == "KeysDestroyed")
            and keys.keys == keys.destroyed
            and keys.error == "KeysDestroyed"
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        data["tables"] = [asdict(t) for t in self.tables]
        data["audit"]["problems"] = list(self.audit.problems)
        data.update(rows_deleted=self.rows_deleted, rows_left=self.rows_left, erased=self.erased)
        return data

    def digest(self) -> str:
        """SHA-256 of the report's canonical JSON (what the platform's audit entry holds)."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ErasureParts:
    """What :func:`erase` works with (the lifecycle manager's)."""

    database: Database
    tenants: TenantRegistry
    security: SecurityManager
    audit: ChangeLog
    cache: CacheManager | None = None


async def erase(parts: ErasureParts, tenant_id: str, *, actor: str | None = None) -> ErasureReport:
    """Erase ``tenant_id`` (see the module docstring); :class:`Conflict` for a reserved tenant or
    one that is not deleted, :class:`~tenantry.errors.TenantNotFound` for none."""
    validate_tenant_id(tenant_id)
    if current_tenant() is not None:  # its transactions are the erased tenant's own
        raise TenantContextError("a tenant is erased outside every tenant scope")
    if tenant_id in RESERVED_TENANTS:
        raise Conflict(f"tenant {tenant_id!r} is tenantry's own: it is never erased")
    tenant = await parts.tenants.get(tenant_id)
    if tenant.status is not TenantStatus.DELETED:
        raise Conflict(
            f"tenant {tenant_id!r} is {tenant.status.value}: set its status to deleted first "
            "(erasure is final)"
        )
    started = datetime.now(UTC)
    db, security = parts.database, parts.security
    await security.trail.outbox.integrate(tenant_id)  # while its entries still open
    probe = await _newest_entry(db, tenant_id)
    opened_before = None if probe is None else await _opens(db, security, tenant_id, probe) is None
    deleted, passes = await _delete_rows(db, tenant_id)
    keys_before = await security.keyring.keys(tenant_id)
    destroyed_now = 0
    if not keys_before or any(k.destroyed_at is None for k in keys_before):
        destroyed_now = sum(k.destroyed_at is None for k in keys_before)
        await security.destroy_tenant_keys(tenant_id, actor=actor)
    dropped = await _drop_queue(db, tenant_id)
    cache_dropped = 0
    if parts.cache is not None:
        with tenant_scope(tenant_id):
            cache_dropped = await parts.cache.clear_tenant()
    provisioning = await _drop_provisioning(db, tenant_id)
    audit = await _audit_after(
        db, security, tenant_id, probe=probe, opened_before=opened_before, dropped=dropped
    )
    report = ErasureReport(
        tenant_id=tenant_id,
        status=(await parts.tenants.get(tenant_id)).status.value,
        started_at=started,
        finished_at=datetime.now(UTC),
        passes=passes,
        tables=await _count(db, tenant_id, deleted),
        audit=audit,
        keys=await _keys_after(db, security, tenant_id, destroyed_now),
        cache_entries_dropped=cache_dropped,
        platform_workflows_deleted=provisioning,
    )
    await parts.audit.prepare(PLATFORM_TENANT)
    await parts.audit.record(
        PLATFORM_TENANT,
        _ACTION,
        f"tenant:{tenant_id}",
        actor=actor,
        outcome="success" if report.erased else "incomplete",
        frameworks=("GDPR",),
        detail={
            "report_sha256": report.digest(),
            "erased": report.erased,
            "rows_deleted": report.rows_deleted,
            "rows_left": report.rows_left,
            "tables": len(report.tables),
            "audit_size": audit.size,
            "keys_destroyed": report.keys.destroyed_now,
        },
    )
    return report


# -- deletion ----------------------------------------------------------------------------------


async def _drop_provisioning(db: Database, tenant_id: str) -> int:
    """Delete the platform's finished provisioning workflows of ``tenant_id`` (their steps go
    with them); how many."""
    with tenant_scope(PLATFORM_TENANT):
        async with db.tenant_transaction() as conn:
            found = await conn.execute(
                text(
                    "DELETE FROM tenantry.workflows WHERE definition = :d "
                    "AND input ->> 'tenant_id' = :t AND status IN "
                    "('completed', 'compensated', 'failed', 'cancelled')"
                ),
                {"d": PROVISIONING.name, "t": tenant_id},
            )
    return int(getattr(found, "rowcount", 0) or 0)


def _erasable() -> list[Table]:
    """The tenant tables the erasure empties, children before parents."""
    skip = {*KEPT_TABLES, _QUEUE}
    return [t for t in reversed(tenant_tables()) if t.name not in skip]


async def _delete_rows(db: Database, tenant_id: str) -> tuple[dict[str, int], int]:
    """Delete the tenant's rows, passes over every erasable table until one finds none left;
    (rows deleted by table, passes made)."""
    deleted: dict[str, int] = {}
    tables = _erasable()
    for number in range(1, PASSES + 1):
        for table in tables:
            deleted[table.name] = deleted.get(table.name, 0) + await _empty(db, tenant_id, table)
        left = await _left(db, tenant_id, [t.name for t in tables])
        if not any(left.values()):
            return deleted, number
        _log.warning("rows arrived during erasure", tenant=tenant_id, left=left)
    return deleted, PASSES


async def _empty(db: Database, tenant_id: str, table: Table) -> int:
    """Delete the tenant's rows of ``table``, :data:`BATCH` a transaction; how many."""
    key = list(table.primary_key.columns)
    batch = select(*key).where(table.c.tenant_id == tenant_id).limit(BATCH)
    statement = delete(table).where(table.c.tenant_id == tenant_id, tuple_(*key).in_(batch))
    total = 0
    while True:
        count = await _under_tree_lock(db, tenant_id, statement)
        total += count
        if count < BATCH:
            return total


async def _under_tree_lock(db: Database, tenant_id: str, statement: Any) -> int:
    """Run ``statement`` in a transaction of the tenant that first takes its audit-tree lock;
    its row count (a deadlock or serialization failure is tried again)."""
    for attempt in range(_RETRIES):
        try:
            with tenant_scope(tenant_id):
                async with db.tenant_transaction(prologue=lock_statement(tenant_id)) as conn:
                    return int((await conn.execute(statement)).rowcount or 0)
        except TransactionRolledBack:
            if attempt + 1 == _RETRIES:
                raise
            await asyncio.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


async def _drop_queue(db: Database, tenant_id: str) -> int:
    """Drop the queued audit entries that could not be integrated before the keys were
    destroyed: they open no more, and their hashes are in no tree."""
    queue = next(t for t in tenant_tables() if t.name == _QUEUE)
    statement = delete(queue).where(queue.c.tenant_id == tenant_id)
    dropped = await _under_tree_lock(db, tenant_id, statement)
    if dropped:
        _log.warning("unintegrated audit entries of an erased tenant dropped", count=dropped)
    return dropped


# -- what is left --------------------------------------------------------------------------------


async def _tables_in_catalog(db: Database) -> list[str]:
    """Every tenant table: declared ones and any other table with a ``tenant_id`` column."""
    async with db.transaction() as conn:
        found = {t.name for t in await read_tenant_tables(conn)}
    declared = [t.name for t in tenant_tables()]
    return declared + sorted(found - set(declared))


async def _left(db: Database, tenant_id: str, names: Sequence[str]) -> dict[str, int]:
    """The tenant's rows in each table ``names``, counted in its scope and by its id."""
    counts: dict[str, int] = {}
    with tenant_scope(tenant_id):
        async with db.tenant_transaction() as conn:
            for name in names:
                table = f"{quote_ident(SCHEMA)}.{quote_ident(name)}"
                query = text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t")
                counts[name] = int(await conn.scalar(query, {"t": tenant_id}) or 0)
    return counts


async def _count(db: Database, tenant_id: str, deleted: dict[str, int]) -> tuple[TableErasure, ...]:
    names = await _tables_in_catalog(db)
    left = await _left(db, tenant_id, names)
    return tuple(
        TableErasure(name, deleted.get(name, 0), left[name], KEPT_TABLES.get(name))
        for name in names
    )


# -- the audit tree and the keys, read back ------------------------------------------------------


async def _newest_entry(db: Database, tenant_id: str) -> tuple[int, bytes] | None:
    """(seq, stored bytes) of the tenant's newest audit entry."""
    entries = next(t for t in tenant_tables() if t.name == "audit_entries")
    query = (
        select(entries.c.seq, entries.c.entry)
        .where(entries.c.entry.is_not(None))
        .order_by(entries.c.seq.desc())
        .limit(1)
    )
    with tenant_scope(tenant_id):
        async with db.tenant_transaction() as conn:
            row = (await conn.execute(query)).first()
    return None if row is None else (int(row[0]), bytes(row[1]))


def _fresh_keyring(db: Database, security: SecurityManager) -> Keyring:
    """A keyring with nothing cached (the security manager's root key and settings): it reads
    the tenant's keys from the database."""
    kept = security.keyring
    return Keyring(db, kept.provider, settings=kept.settings, max_age=None)


async def _opens(
    db: Database, security: SecurityManager, tenant_id: str, probe: tuple[int, bytes]
) -> str | None:
    """None if the entry ``probe`` opens with keys read anew, else the error's name."""
    cipher = KeyringAuditCipher(_fresh_keyring(db, security))
    seq, data = probe
    try:
        await cipher.open(tenant_id, data, f"audit_entries/{seq}")
    except DecryptionError as exc:
        return type(exc).__name__
    return None


async def _audit_after(
    db: Database,
    security: SecurityManager,
    tenant_id: str,
    *,
    probe: tuple[int, bytes] | None,
    opened_before: bool | None,
    dropped: int,
) -> AuditAfterErasure:
    log = security.audit_log
    head = await log.checkpoint(tenant_id)  # signed by the platform's signer, not the tenant
    verified = await log.verify(tenant_id)
    return AuditAfterErasure(
        size=verified.size,
        root_hash=head.root_hash.hex(),
        verified=verified.ok,
        entries_checked=verified.entries_checked,
        payloads_unavailable=verified.payloads_unavailable,
        checkpoints_checked=verified.checkpoints_checked,
        problems=tuple(p.message for p in verified.problems),
        probe_seq=None if probe is None else probe[0],
        probe_opened_before=opened_before,
        probe_error_after=None if probe is None else await _opens(db, security, tenant_id, probe),
        queue_dropped=dropped,
    )


async def _keys_after(
    db: Database, security: SecurityManager, tenant_id: str, destroyed_now: int
) -> KeysAfterErasure:
    fresh = _fresh_keyring(db, security)
    keys = await fresh.keys(tenant_id)
    error: str | None = None
    try:  # sealing anything with the tenant's keys, as read from the database
        await fresh.encrypt(tenant_id, b"", purpose="lifecycle.erasure", record_id="probe")
    except DecryptionError as exc:
        error = type(exc).__name__
    return KeysAfterErasure(
        keys=len(keys),
        destroyed=sum(k.destroyed_at is not None for k in keys),
        destroyed_now=destroyed_now,
        error=error,
    )

"""The Keyring: per-tenant KEKs and data keys, record encryption, rotation, crypto-shredding.

Hierarchy: the root key (a :class:`~tenantry.keys.provider.KeyProvider`, versioned) wraps each
tenant's key-encryption keys (``tenant_keys`` rows ``purpose='kek'``; hybrid X25519 + ML-KEM-768
for tenants at security level ``quantum``, see ``kem.py`` and ``level.py``); a KEK wraps the
tenant's data keys (``purpose='data'``, ``kek_version``); a data key encrypts records
(AES-256-GCM, format in ``crypto.py``). The data path (load, seal, open, encrypt, decrypt) is in
``core.py``, root rotation in ``root.py``.

Key changes run in a transaction of their own, serialized per tenant by an advisory lock, in
which the caller's ``record`` writes the change's audit entry (``changes.py``), and notify every
process: with :meth:`Keyring.start` (or ``async with keyring.listening():``) a
destruction or rotation elsewhere reaches this process's cache within moments
(``signal.py``, ``cache.py``); an entry older than ``max_age`` is reloaded in any case.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.engine import RowMapping

from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, change_log_for
from tenantry.errors import TenantNotFound, TenantryError
from tenantry.keys.cache import CachedKeys
from tenantry.keys.changes import KeyChange, RecordKeyChange
from tenantry.keys.core import KeyringCore, key_version
from tenantry.keys.hierarchy import Progress, is_destroyed, newest_kek_is_hybrid
from tenantry.keys.level import default_level, read_level, write_level
from tenantry.keys.repository import TenantKeysRepository
from tenantry.keys.root import RootKeys, RootRotation
from tenantry.keys.signal import KeyListener, KeySignal
from tenantry.levels import SecurityLevel, parse_level
from tenantry.logging import get_logger
from tenantry.tenants.repository import TenantsRepository

__all__ = [
    "KeyChange",
    "KeyInfo",
    "Keyring",
    "Progress",
    "RecordKeyChange",
    "RootRotation",
    "key_version",
]

_T = TypeVar("_T")


_log = get_logger("tenantry.keys")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One ``tenant_keys`` row, without the key."""

    purpose: str
    version: int
    algorithm: str
    kek_version: int | None
    root_key_version: int | None
    created_at: datetime
    retired_at: datetime | None
    destroyed_at: datetime | None


class Keyring(KeyringCore):
    """Encrypt and decrypt tenant records; create, rotate, rewrap and destroy tenant keys; rotate
    the root key; follow other processes' key changes (:meth:`start`).

    ``settings`` (default: the environment's) give the root key file and the default security
    level; ``max_age`` bounds, in seconds, how long unwrapped keys are used without reading the
    database again (None: until a signal or :meth:`forget`); ``listen_interval`` is how often the
    listener checks its connection and sweeps expired entries.
    """

    # -- key management ------------------------------------------------------------------------
    # ``record`` (the SecurityManager's): awaited with a KeyChange inside the change's transaction,
    # so the change and its audit entry commit together or not at all (``changes.py``).

    async def _change(
        self,
        tenant_id: str,
        work: Callable[[TenantKeysRepository], Awaitable[_T]],
        record: RecordKeyChange | None = None,
    ) -> _T:
        """:meth:`_keys_work`; for a change that ``record`` audits, the tenant's cached keys are
        read under the lock first (the entry may be sealed with them in this transaction)."""
        if record is None:
            return await self._keys_work(tenant_id, work)

        async def audited(repo: TenantKeysRepository) -> _T:
            await self._fresh_under_lock(repo)
            return await work(repo)

        return await self._keys_work(tenant_id, audited)

    async def rotate(
        self, tenant_id: str, *, quantum: bool | None = None, record: RecordKeyChange | None = None
    ) -> int:
        """New KEK and data key versions; older ones are retired but still decrypt. The KEK is
        hybrid if ``quantum``; None: if the newest KEK is hybrid or the tenant's security level
        is ``quantum`` (never a silent downgrade). Returns the new data-key version."""

        async def work(repo: TenantKeysRepository) -> CachedKeys:
            loaded = await self._rotate(repo, await repo.all(), quantum)
            if record is not None:
                await record(KeyChange("rotate", tenant_id, {"version": loaded.current}))
            return loaded

        loaded = await self._change(tenant_id, work, record)
        self._cache.store(tenant_id, loaded)
        return loaded.current

    async def _rotate(
        self, repo: TenantKeysRepository, rows: Sequence[RowMapping], quantum: bool | None
    ) -> CachedKeys:
        """Rotate inside a key transaction (see :meth:`rotate`), after ``rows``; the keys it
        leaves, to cache once it commits."""
        tenant_id = repo.tenant_id
        hybrid = quantum
        if hybrid is None:
            level_quantum = await self._level_is_quantum(tenant_id)  # validates the setting
            hybrid = level_quantum or newest_kek_is_hybrid(rows)
        await self.hierarchy.rotate(repo, rows, hybrid)
        loaded = await self._unwrap_all(tenant_id, await repo.all())
        await repo.notify("rotated", loaded.current)
        return loaded

    async def rewrap(
        self,
        tenant_id: str,
        *,
        progress: Progress | None = None,
        record: RecordKeyChange | None = None,
    ) -> int:
        """Re-wrap every older data key under the newest KEK; returns how many were re-wrapped
        (``record`` is awaited only when there were some)."""

        async def work(repo: TenantKeysRepository) -> int:
            count = await self.hierarchy.rewrap(repo, progress)
            if count and record is not None:
                await record(KeyChange("rewrap", tenant_id, {"rewrapped": count}))
            return count

        return await self._change(tenant_id, work, record)

    async def destroy_tenant_keys(
        self, tenant_id: str, *, record: RecordKeyChange | None = None
    ) -> int:
        """Crypto-shredding: NULL every wrapped key of the tenant and drop them from memory.

        Every ciphertext of the tenant, and every copy of one, becomes unreadable
        (:class:`KeysDestroyed`) as long as no copy of the wrapped keys *and* the root key
        survives. Every listening process drops the keys when this commits. Returns the number
        of keys destroyed. ``record`` cannot seal with the tenant's keys: they are destroyed in
        this process before the transaction opens (nothing seals with them meanwhile).
        """

        async def work(repo: TenantKeysRepository) -> int:
            count = await repo.destroy()
            if count == 0:
                await repo.tombstone()
            await repo.notify("destroyed", 0)
            if record is not None:
                await record(KeyChange("destroy", tenant_id))
            return count

        validate_tenant_id(tenant_id)
        self._cache.store(tenant_id, CachedKeys(destroyed=True))
        try:
            return await self._keys_work(tenant_id, work)
        except BaseException:
            self.forget(tenant_id)
            raise

    async def keys(self, tenant_id: str) -> list[KeyInfo]:
        """The tenant's key rows (versions, algorithms, states), without key material."""
        rows = await self._keys_work(tenant_id, lambda repo: repo.all())
        return [KeyInfo(**{k: r[k] for k in KeyInfo.__dataclass_fields__ if k in r}) for r in rows]

    # -- security level ------------------------------------------------------------------------
    async def security_level(self, tenant_id: str) -> SecurityLevel:
        """The tenant's ``security_level`` setting, or the process default;
        :class:`TenantNotFound` for a tenant that is not in the registry."""
        validate_tenant_id(tenant_id)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:  # the read below joins it
                if await TenantsRepository(conn).get(tenant_id) is None:
                    raise TenantNotFound(f"tenant {tenant_id!r} does not exist")
                return await read_level(db, tenant_id, default_level(self.settings))

    async def set_security_level(
        self,
        tenant_id: str,
        level: SecurityLevel | str,
        *,
        rotate: bool = True,
        actor: str | None = None,
        audit: ChangeLog | None = None,
        record: RecordKeyChange | None = None,
    ) -> SecurityLevel:
        """Set the tenant's level (:class:`InvalidInput` if invalid; nothing changes then).

        At ``quantum``, a tenant whose KEK is classic gets a hybrid one at once (a rotation;
        ``rotate=False``: at its next :meth:`rotate`); one without keys gets a hybrid KEK with
        its first keys. Lowering the level leaves a hybrid KEK as it is. The setting (and its
        ``setting.set`` entry in the tenant's tree, through ``audit``: by default the database's
        change log, with ``actor``), the rotation and ``record`` share one key transaction.
        """
        validate_tenant_id(tenant_id)
        parsed = parse_level(level)
        db = await self._db()
        log = audit or change_log_for(db)
        await log.prepare(tenant_id)  # the setting's entry is sealed inside the key transaction

        async def work(repo: TenantKeysRepository) -> CachedKeys | None:
            await self._fresh_under_lock(repo)
            await write_level(db, tenant_id, parsed, actor=actor, audit=log)
            rows, loaded = await repo.all(), None
            # Without keys its first ones will be hybrid; destroyed keys stay destroyed.
            classic = bool(rows) and not is_destroyed(rows) and not newest_kek_is_hybrid(rows)
            if rotate and parsed is SecurityLevel.QUANTUM and classic:
                loaded = await self._rotate(repo, rows, True)
            if record is not None:
                detail = {"level": parsed.value, "rotate": rotate}
                await record(KeyChange("level", tenant_id, detail))
            return loaded

        loaded = await self._keys_work(tenant_id, work)
        if loaded is not None:
            self._cache.store(tenant_id, loaded)
        return parsed

    # -- root key ------------------------------------------------------------------------------
    async def rotate_root(
        self,
        *,
        resume: bool = False,
        retire: bool = False,
        progress: Progress | None = None,
        record: RecordKeyChange | None = None,
    ) -> RootRotation:
        """A new root key version, every tenant's KEKs re-wrapped under it (``progress(done,
        total)`` per tenant); ``resume``: no new version, finish re-wrapping under the newest;
        ``retire``: then retire the older versions (see :meth:`retire_root`)."""
        root = RootKeys(await self._db(), self.hierarchy, self._change, record)
        return await root.rotate(resume=resume, retire=retire, progress=progress)

    async def retire_root(
        self, *, progress: Progress | None = None, record: RecordKeyChange | None = None
    ) -> tuple[int, ...]:
        """Retire every root key version but the newest, once no KEK uses them (else
        :class:`~tenantry.errors.Conflict`, nothing changed). Returns the retired versions."""
        root = RootKeys(await self._db(), self.hierarchy, self._change, record)
        return await root.retire(progress)

    # -- signals from other processes ----------------------------------------------------------
    async def start(self) -> None:
        """LISTEN for key changes of other processes (:class:`DatabaseUnavailable` if the
        database cannot be reached now; later losses are reconnected)."""
        if self.listener is None:
            listener = KeyListener(
                await self._db(), KeyringSignals(self), interval=self._listen_interval
            )
            await listener.start()
            self.listener = listener

    async def close(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            await listener.close()

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[Keyring]:
        """``async with keyring.listening():`` :meth:`start`, then :meth:`close`."""
        await self.start()
        try:
            yield self
        finally:
            await self.close()


class KeyringSignals:
    """The :class:`~tenantry.keys.signal.SignalHandler` of a Keyring."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self.cache = keyring.cache

    def signalled(self, signal: KeySignal) -> None:
        if signal.tenant_id is None:
            return
        if signal.event == "destroyed":
            self.cache.destroyed(signal.tenant_id)
        else:
            self.cache.changed(signal.tenant_id)

    async def follow_up(self, signal: KeySignal) -> None:
        if signal.event == "root":
            await self.keyring.provider.versions()  # a file provider re-reads a changed file
            return
        tenant_id = signal.tenant_id
        entry = None if tenant_id is None else self.cache.entries.get(tenant_id)
        fresher = entry is not None and not entry.destroyed and entry.current < signal.version
        if tenant_id is not None and fresher and signal.event == "rotated":
            await self._reload(tenant_id)

    async def resync(self) -> None:
        for tenant_id in list(self.cache.entries):
            await self._reload(tenant_id)

    async def sweep(self) -> None:
        for tenant_id in self.cache.stale():
            await self._reload(tenant_id)

    async def _reload(self, tenant_id: str) -> None:
        try:
            await self.keyring.load(tenant_id, refresh=True)
        except TenantNotFound:
            self.cache.forget(tenant_id)
        except TenantryError as exc:  # keep what is cached; the next sweep tries again
            _log.warning("reloading tenant keys failed", tenant=tenant_id, error=exc.detail)

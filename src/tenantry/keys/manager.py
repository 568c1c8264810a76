"""The Keyring: per-tenant KEKs and data keys, record encryption, rotation, crypto-shredding.

Hierarchy: the root key (a :class:`~tenantry.keys.provider.KeyProvider`, versioned) wraps each
tenant's key-encryption keys (``tenant_keys`` rows ``purpose='kek'``; hybrid X25519 + ML-KEM-768
for tenants at security level ``quantum``, see ``kem.py`` and ``level.py``); a KEK wraps the
tenant's data keys (``purpose='data'``, ``kek_version``); a data key encrypts records
(AES-256-GCM, format in ``crypto.py``). The data path (load, seal, open, encrypt, decrypt) is in
``core.py``, root rotation in ``root.py``.

Key changes run in a transaction of their own, serialized per tenant by an advisory lock, and
notify every process: with :meth:`Keyring.start` (or ``async with keyring.listening():``) a
destruction or rotation elsewhere reaches this process's cache within moments
(``signal.py``, ``cache.py``); an entry older than ``max_age`` is reloaded in any case.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from tenantry.context import validate_tenant_id
from tenantry.errors import TenantNotFound, TenantryError
from tenantry.keys.cache import CachedKeys
from tenantry.keys.core import KeyringCore, key_version
from tenantry.keys.hierarchy import Progress, is_destroyed, newest_kek_is_hybrid
from tenantry.keys.level import default_level, read_level, write_level
from tenantry.keys.repository import TenantKeysRepository
from tenantry.keys.root import RootKeys, RootRotation
from tenantry.keys.signal import KeyListener, KeySignal
from tenantry.levels import SecurityLevel
from tenantry.logging import get_logger

__all__ = ["KeyInfo", "Keyring", "Progress", "RootRotation", "key_version"]


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
    async def rotate(self, tenant_id: str, *, quantum: bool | None = None) -> int:
        """New KEK and data key versions; older ones are retired but still decrypt. The KEK is
        hybrid if ``quantum``; None: if the newest KEK is hybrid or the tenant's security level
        is ``quantum`` (never a silent downgrade). Returns the new data-key version."""
        loaded = await self._rotate(tenant_id, quantum)
        return 0 if loaded is None else loaded.current

    async def _rotate(
        self, tenant_id: str, quantum: bool | None, *, to_hybrid: bool = False
    ) -> CachedKeys | None:
        """:meth:`rotate`; ``to_hybrid``: only if the tenant has a classic KEK (else None)."""

        async def work(repo: TenantKeysRepository) -> CachedKeys | None:
            rows = await repo.all()
            if to_hybrid and (not rows or is_destroyed(rows) or newest_kek_is_hybrid(rows)):
                return None  # its first keys will be hybrid; destroyed keys stay destroyed
            hybrid = quantum
            if hybrid is None:
                level_quantum = await self._level_is_quantum(tenant_id)  # validates the setting
                hybrid = level_quantum or newest_kek_is_hybrid(rows)
            await self.hierarchy.rotate(repo, rows, hybrid)
            loaded = await self._unwrap_all(tenant_id, await repo.all())
            await repo.notify("rotated", loaded.current)
            return loaded

        loaded = await self._keys_work(tenant_id, work)
        if loaded is not None:
            self._cache.store(tenant_id, loaded)
        return loaded

    async def rewrap(self, tenant_id: str, *, progress: Progress | None = None) -> int:
        """Re-wrap every older data key under the newest KEK; returns how many were re-wrapped."""
        return await self._keys_work(tenant_id, lambda repo: self.hierarchy.rewrap(repo, progress))

    async def destroy_tenant_keys(self, tenant_id: str) -> int:
        """Crypto-shredding: NULL every wrapped key of the tenant and drop them from memory.

        Every ciphertext of the tenant, and every copy of one, becomes unreadable
        (:class:`KeysDestroyed`) as long as no copy of the wrapped keys *and* the root key
        survives. Every listening process drops the keys when this commits. Returns the number
        of keys destroyed.
        """

        async def work(repo: TenantKeysRepository) -> int:
            count = await repo.destroy()
            if count == 0:
                await repo.tombstone()
            await repo.notify("destroyed", 0)
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
        """The tenant's ``security_level`` setting, or the process default."""
        validate_tenant_id(tenant_id)
        return await read_level(await self._db(), tenant_id, default_level(self.settings))

    async def set_security_level(
        self, tenant_id: str, level: SecurityLevel | str, *, rotate: bool = True
    ) -> SecurityLevel:
        """Set the tenant's level (:class:`InvalidInput` if invalid; nothing changes then).

        At ``quantum``, a tenant whose KEK is classic gets a hybrid one at once (a rotation;
        ``rotate=False``: at its next :meth:`rotate`); one without keys gets a hybrid KEK with
        its first keys. Lowering the level leaves a hybrid KEK as it is.
        """
        validate_tenant_id(tenant_id)
        parsed = await write_level(await self._db(), tenant_id, level)
        if rotate and parsed is SecurityLevel.QUANTUM:
            await self._rotate(tenant_id, True, to_hybrid=True)
        return parsed

    # -- root key ------------------------------------------------------------------------------
    async def rotate_root(
        self, *, resume: bool = False, retire: bool = False, progress: Progress | None = None
    ) -> RootRotation:
        """A new root key version, every tenant's KEKs re-wrapped under it (``progress(done,
        total)`` per tenant); ``resume``: no new version, finish re-wrapping under the newest;
        ``retire``: then retire the older versions (see :meth:`retire_root`)."""
        root = RootKeys(await self._db(), self.hierarchy, self._keys_work)
        return await root.rotate(resume=resume, retire=retire, progress=progress)

    async def retire_root(self, *, progress: Progress | None = None) -> tuple[int, ...]:
        """Retire every root key version but the newest, once no KEK uses them (else
        :class:`~tenantry.errors.Conflict`, nothing changed). Returns the retired versions."""
        root = RootKeys(await self._db(), self.hierarchy, self._keys_work)
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

"""The Keyring's data path: loading and caching a tenant's data keys, sealing and opening records.

:class:`KeyringCore` holds the database, the root key provider and the per-process cache
(``cache.py``); :class:`~tenantry.keys.manager.Keyring` adds key management on top.
Unwrapped data keys are cached per (tenant, version) after :meth:`KeyringCore.load`;
:meth:`KeyringCore.seal` and :meth:`KeyringCore.open` are then synchronous and do no I/O (one
dict lookup, a scope check, AES-GCM). Key work runs in a transaction of its own (never the
caller's, so a rolled-back caller cannot leave a key in the cache that the database forgot),
serialized per tenant by an advisory lock. Inside it, loading the same tenant's keys again would
wait for that lock forever: it is refused (:class:`TenantContextError`) instead, and an audited
change reads the tenant's keys under the lock first (:meth:`KeyringCore._fresh_under_lock`), so
the entries it seals there need no load.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import RowMapping

from tenantry.config import Settings, load_settings
from tenantry.context import current_tenant, tenant_scope, validate_tenant_id
from tenantry.db.default import UsesDatabase
from tenantry.db.engine import Database
from tenantry.errors import (
    Conflict,
    DecryptionError,
    KeysDestroyed,
    KeysNotLoaded,
    TenantContextError,
    TenantNotFound,
)
from tenantry.keys import crypto
from tenantry.keys.cache import CachedKeys, KeyCache
from tenantry.keys.crypto import FORMAT_V1, HEADER, TAG_BYTES, record_context
from tenantry.keys.hierarchy import KeyHierarchy, is_destroyed
from tenantry.keys.level import default_level, read_level
from tenantry.keys.provider import KeyProvider, provider_from_environment
from tenantry.keys.repository import TenantKeysRepository
from tenantry.keys.signal import KeyListener
from tenantry.levels import SecurityLevel
from tenantry.tenants.repository import TenantsRepository

__all__ = ["KeyringCore", "check_scope", "key_version"]

_T = TypeVar("_T")
_MIN_LENGTH = HEADER.size + TAG_BYTES
_LOAD_ATTEMPTS = 5
#: The tenant whose key transaction is open in this context (its lock is held).
_changing: ContextVar[str | None] = ContextVar("tenantry_keys_changing", default=None)


def key_version(ciphertext: bytes) -> int:
    """The data-key version a ciphertext was made with (to find records to re-encrypt)."""
    if len(ciphertext) < _MIN_LENGTH or ciphertext[0] != FORMAT_V1:
        raise DecryptionError("not a tenantry ciphertext (unknown format or truncated)")
    return int(HEADER.unpack_from(ciphertext)[1])


def check_scope(tenant_id: str) -> None:
    outer = current_tenant()
    if outer is not None and outer != tenant_id:
        raise TenantContextError(f"cannot use tenant {tenant_id!r}'s keys in tenant {outer!r}")


class KeyringCore(UsesDatabase):
    """The data path of :class:`~tenantry.keys.manager.Keyring` (its arguments are there)."""

    def __init__(
        self,
        database: Database | None = None,
        provider: KeyProvider | None = None,
        *,
        settings: Settings | None = None,
        max_age: float | None = 300.0,
        listen_interval: float = 5.0,
    ) -> None:
        self._database = database
        self._provider = provider
        self._settings = settings
        self._hierarchy: KeyHierarchy | None = None
        self._cache = KeyCache(max_age)
        self._loaded = self._cache.entries  # the hot path's one lookup
        self._listen_interval = listen_interval
        self.listener: KeyListener | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def provider(self) -> KeyProvider:
        """The root key provider (by default the file one of ``provider_from_environment``)."""
        if self._provider is None:
            self._provider = provider_from_environment(self.settings)
        return self._provider

    @property
    def hierarchy(self) -> KeyHierarchy:
        if self._hierarchy is None:
            self._hierarchy = KeyHierarchy(self.provider)
        return self._hierarchy

    @property
    def cache(self) -> KeyCache:
        return self._cache

    async def _unwrap_all(self, tenant_id: str, rows: Sequence[RowMapping]) -> CachedKeys:
        if is_destroyed(rows):
            return CachedKeys(destroyed=True)
        keys = await self.hierarchy.data_keys(tenant_id, rows)
        ciphers = {version: AESGCM(key) for version, key in keys.items()}
        return CachedKeys(current=max(ciphers, default=0), ciphers=ciphers)

    async def _keys_work(
        self, tenant_id: str, work: Callable[[TenantKeysRepository], Awaitable[_T]]
    ) -> _T:
        """Run ``work`` in a tenant transaction of its own (fresh context), under the lock;
        :class:`TenantNotFound` for a tenant that is not in the registry."""
        validate_tenant_id(tenant_id)
        check_scope(tenant_id)
        if _changing.get() == tenant_id:
            raise TenantContextError(
                f"the keys of tenant {tenant_id!r} are being changed in this transaction, which "
                "holds their lock: load them before it opens"
            )
        db = await self._db()
        self.hierarchy  # noqa: B018 - resolve the root key before opening a transaction

        async def run() -> _T:
            with tenant_scope(tenant_id):
                async with db.tenant_transaction() as conn:
                    repo = TenantKeysRepository(conn)
                    await repo.lock()
                    if await TenantsRepository(conn).get(tenant_id) is None:
                        raise TenantNotFound(f"tenant {tenant_id!r} does not exist")
                    _changing.set(tenant_id)  # this task's own context: nothing to reset
                    return await work(repo)

        return await asyncio.create_task(run(), context=contextvars.Context())

    async def _fresh_under_lock(self, repo: TenantKeysRepository) -> None:
        """Inside a key transaction: re-read the cached keys of its tenant from its rows, before
        any change (the committed keys), so that sealing the tenant's audit entries in this
        transaction needs no load. A tenant this process does not cache is left alone."""
        tenant_id = repo.tenant_id
        if tenant_id in self._loaded and (rows := await repo.all()):
            self._cache.store(tenant_id, await self._unwrap_all(tenant_id, rows))

    async def _level_is_quantum(self, tenant_id: str) -> bool:
        level = await read_level(await self._db(), tenant_id, default_level(self.settings))
        return level is SecurityLevel.QUANTUM

    # -- loading -------------------------------------------------------------------------------
    def loaded(self, tenant_id: str) -> bool:
        """True when :meth:`seal` and :meth:`open` can serve ``tenant_id``."""
        return tenant_id in self._loaded

    async def load(
        self, tenant_id: str, *, quantum: bool | None = None, refresh: bool = False
    ) -> int:
        """Unwrap and cache the tenant's data keys, creating the first ones if it has none (a
        hybrid KEK if ``quantum``; None: if the tenant's security level is ``quantum``).
        Returns the current data-key version (0 once destroyed)."""
        if not refresh and (cached := self._cache.fresh(tenant_id)) is not None:
            return cached.current

        async def work(repo: TenantKeysRepository) -> CachedKeys:
            rows = await repo.all()
            if not rows:
                hybrid = await self._level_is_quantum(tenant_id) if quantum is None else quantum
                await self.hierarchy.create(repo, 1, 1, hybrid)
                rows = await repo.all()
            return await self._unwrap_all(tenant_id, rows)

        for _ in range(_LOAD_ATTEMPTS):
            epoch = self._cache.begin_load(tenant_id)
            loaded = None
            try:
                loaded = await self._keys_work(tenant_id, work)
            finally:
                stored = self._cache.finish_load(tenant_id, epoch, loaded)
            if stored and loaded is not None:
                return loaded.current
        raise Conflict(f"the keys of tenant {tenant_id!r} kept changing while loading; try again")

    def forget(self, tenant_id: str) -> None:
        """Drop the tenant's cached keys from this process."""
        self._cache.forget(tenant_id)

    # -- the hot path --------------------------------------------------------------------------
    def _keys(self, tenant_id: str) -> CachedKeys:
        check_scope(tenant_id)
        keys = self._loaded.get(tenant_id)
        if keys is None:
            raise KeysNotLoaded(f"keys of tenant {tenant_id!r} are not loaded: await load() first")
        if keys.destroyed:
            raise KeysDestroyed(f"the keys of tenant {tenant_id!r} were destroyed")
        return keys

    def seal(self, tenant_id: str, plaintext: bytes, purpose: str, record_id: str) -> bytes:
        """Encrypt for (tenant, purpose, record) with the current data key; no I/O."""
        keys = self._keys(tenant_id)
        nonce = os.urandom(crypto.NONCE_BYTES)
        header = HEADER.pack(FORMAT_V1, keys.current, nonce)
        aad = header + record_context(tenant_id, purpose, record_id)
        return header + keys.ciphers[keys.current].encrypt(nonce, plaintext, aad)

    def open(self, tenant_id: str, ciphertext: bytes, purpose: str, record_id: str) -> bytes:
        """Decrypt what :meth:`seal` made for the same (tenant, purpose, record); no I/O."""
        keys = self._keys(tenant_id)
        version = key_version(ciphertext)
        cipher = keys.ciphers.get(version)
        if cipher is None:
            raise DecryptionError(f"tenant {tenant_id!r} has no data key version {version}")
        header = ciphertext[: HEADER.size]
        aad = header + record_context(tenant_id, purpose, record_id)
        try:
            return cipher.decrypt(header[5:], ciphertext[HEADER.size :], aad)
        except InvalidTag:
            raise DecryptionError(
                f"the ciphertext does not open for tenant {tenant_id!r}, purpose {purpose!r}, "
                f"record {record_id!r}: another tenant's, record's or purpose's, or tampered"
            ) from None

    # -- async API -----------------------------------------------------------------------------
    async def encrypt(
        self, tenant_id: str, plaintext: bytes, *, purpose: str, record_id: str
    ) -> bytes:
        await self.load(tenant_id)
        return self.seal(tenant_id, plaintext, purpose, record_id)

    async def decrypt(
        self, tenant_id: str, ciphertext: bytes, *, purpose: str, record_id: str
    ) -> bytes:
        keys = self._cache.fresh(tenant_id)
        if keys is None or (not keys.destroyed and key_version(ciphertext) not in keys.ciphers):
            await self.load(tenant_id, refresh=True)  # first use, expired, or rotated elsewhere
        return self.open(tenant_id, ciphertext, purpose, record_id)

    async def reencrypt(
        self, tenant_id: str, ciphertext: bytes, *, purpose: str, record_id: str
    ) -> bytes:
        """The same plaintext under the current data key (after :meth:`rotate`)."""
        plaintext = await self.decrypt(tenant_id, ciphertext, purpose=purpose, record_id=record_id)
        return self.seal(tenant_id, plaintext, purpose, record_id)

"""The Keyring: per-tenant KEKs and data keys, record encryption, rotation, crypto-shredding.

Hierarchy: the root key (a :class:`~tenantry.security.keys.KeyProvider`) wraps each tenant's
key-encryption keys (``tenant_keys`` rows ``purpose='kek'``; hybrid X25519 + ML-KEM-768 for
quantum tenants, see ``kem.py``); a KEK wraps the tenant's data keys (``purpose='data'``,
``kek_version``); a data key encrypts records (AES-256-GCM, format in ``crypto.py``).

Unwrapped data keys are cached in this process per (tenant, version) after :meth:`Keyring.load`;
:meth:`Keyring.seal` and :meth:`Keyring.open` are then synchronous and do no I/O. Key changes run
in a transaction of their own (never the caller's, so a rolled-back caller cannot leave a key in
the cache that the database forgot), serialized per tenant by an advisory lock. Another process
sees a rotation or a destruction when it loads the tenant again (``refresh=True``).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import RowMapping

from tenantry.context import current_tenant, tenant_scope, validate_tenant_id
from tenantry.db.default import UsesDatabase
from tenantry.db.engine import Database
from tenantry.errors import (
    DecryptionError,
    KeysDestroyed,
    KeysNotLoaded,
    ReferenceMissing,
    TenantContextError,
    TenantNotFound,
)
from tenantry.security import crypto
from tenantry.security.crypto import FORMAT_V1, HEADER, TAG_BYTES, record_context
from tenantry.security.hierarchy import KeyHierarchy, Progress, is_destroyed
from tenantry.security.keys import KeyProvider, provider_from_environment
from tenantry.security.keys_repository import TenantKeysRepository

__all__ = ["KeyInfo", "Keyring", "Progress", "key_version"]

_T = TypeVar("_T")
_MIN_LENGTH = HEADER.size + TAG_BYTES


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One ``tenant_keys`` row, without the key."""

    purpose: str
    version: int
    algorithm: str
    kek_version: int | None
    created_at: datetime
    retired_at: datetime | None
    destroyed_at: datetime | None


@dataclass(slots=True)
class _Loaded:
    current: int = 0
    ciphers: dict[int, AESGCM] = field(default_factory=dict)
    destroyed: bool = False


def key_version(ciphertext: bytes) -> int:
    """The data-key version a ciphertext was made with (to find records to re-encrypt)."""
    if len(ciphertext) < _MIN_LENGTH or ciphertext[0] != FORMAT_V1:
        raise DecryptionError("not a tenantry ciphertext (unknown format or truncated)")
    return int(HEADER.unpack_from(ciphertext)[1])


def _check_scope(tenant_id: str) -> None:
    outer = current_tenant()
    if outer is not None and outer != tenant_id:
        raise TenantContextError(f"cannot use tenant {tenant_id!r}'s keys in tenant {outer!r}")


class Keyring(UsesDatabase):
    """Encrypt and decrypt tenant records; create, rotate, rewrap and destroy tenant keys."""

    def __init__(self, database: Database | None = None, provider: KeyProvider | None = None):
        self._database = database
        self._provider = provider
        self._hierarchy: KeyHierarchy | None = None
        self._loaded: dict[str, _Loaded] = {}

    @property
    def provider(self) -> KeyProvider:
        """The root key provider (by default the file one of ``provider_from_environment``)."""
        if self._provider is None:
            self._provider = provider_from_environment()
        return self._provider

    @property
    def hierarchy(self) -> KeyHierarchy:
        if self._hierarchy is None:
            self._hierarchy = KeyHierarchy(self.provider)
        return self._hierarchy

    async def _unwrap_all(self, tenant_id: str, rows: Sequence[RowMapping]) -> _Loaded:
        if is_destroyed(rows):
            return _Loaded(destroyed=True)
        keys = await self.hierarchy.data_keys(tenant_id, rows)
        ciphers = {version: AESGCM(key) for version, key in keys.items()}
        return _Loaded(current=max(ciphers, default=0), ciphers=ciphers)

    async def _keys_work(
        self, tenant_id: str, work: Callable[[TenantKeysRepository], Awaitable[_T]]
    ) -> _T:
        """Run ``work`` in a tenant transaction of its own (fresh context), under the lock."""
        validate_tenant_id(tenant_id)
        _check_scope(tenant_id)
        db = await self._db()
        self.hierarchy  # noqa: B018 - resolve the root key before opening a transaction

        async def run() -> _T:
            with tenant_scope(tenant_id):
                async with db.tenant_transaction() as conn:
                    repo = TenantKeysRepository(conn)
                    await repo.lock()
                    return await work(repo)

        return await asyncio.create_task(run(), context=contextvars.Context())

    # -- loading -------------------------------------------------------------------------------
    def loaded(self, tenant_id: str) -> bool:
        """True when :meth:`seal` and :meth:`open` can serve ``tenant_id``."""
        return tenant_id in self._loaded

    async def load(self, tenant_id: str, *, quantum: bool = False, refresh: bool = False) -> int:
        """Unwrap and cache the tenant's data keys, creating the first ones (``quantum``: hybrid
        KEK) if it has none. Returns the current data-key version (0 once destroyed)."""
        if not refresh and (cached := self._loaded.get(tenant_id)) is not None:
            return cached.current

        async def work(repo: TenantKeysRepository) -> _Loaded:
            rows = await repo.all()
            if not rows:
                await self.hierarchy.create(repo, 1, 1, quantum)
                rows = await repo.all()
            return await self._unwrap_all(tenant_id, rows)

        try:
            loaded = await self._keys_work(tenant_id, work)
        except ReferenceMissing:
            raise TenantNotFound(f"tenant {tenant_id!r} does not exist") from None
        self._loaded[tenant_id] = loaded
        return loaded.current

    def forget(self, tenant_id: str) -> None:
        """Drop the tenant's cached keys from this process."""
        self._loaded.pop(tenant_id, None)

    # -- the hot path --------------------------------------------------------------------------
    def _keys(self, tenant_id: str) -> _Loaded:
        _check_scope(tenant_id)
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
        keys = self._loaded.get(tenant_id)
        if keys is None or (not keys.destroyed and key_version(ciphertext) not in keys.ciphers):
            await self.load(tenant_id, refresh=True)  # first use, or rotated elsewhere
        return self.open(tenant_id, ciphertext, purpose, record_id)

    async def reencrypt(
        self, tenant_id: str, ciphertext: bytes, *, purpose: str, record_id: str
    ) -> bytes:
        """The same plaintext under the current data key (after :meth:`rotate`)."""
        plaintext = await self.decrypt(tenant_id, ciphertext, purpose=purpose, record_id=record_id)
        return self.seal(tenant_id, plaintext, purpose, record_id)

    # -- key management ------------------------------------------------------------------------
    async def rotate(self, tenant_id: str, *, quantum: bool | None = None) -> int:
        """New KEK and data key versions; older ones are retired but still decrypt. ``quantum``
        None keeps the current KEK's kind. Returns the new data-key version."""

        async def work(repo: TenantKeysRepository) -> _Loaded:
            await self.hierarchy.rotate(repo, quantum)
            return await self._unwrap_all(tenant_id, await repo.all())

        loaded = await self._keys_work(tenant_id, work)
        self._loaded[tenant_id] = loaded
        return loaded.current

    async def rewrap(self, tenant_id: str, *, progress: Progress | None = None) -> int:
        """Re-wrap every older data key under the newest KEK; returns how many were re-wrapped."""
        return await self._keys_work(tenant_id, lambda repo: self.hierarchy.rewrap(repo, progress))

    async def destroy_tenant_keys(self, tenant_id: str) -> int:
        """Crypto-shredding: NULL every wrapped key of the tenant and drop them from memory.

        Every ciphertext of the tenant, and every copy of one, becomes unreadable
        (:class:`KeysDestroyed`) as long as no copy of the wrapped keys *and* the root key
        survives. Returns the number of keys destroyed.
        """

        async def work(repo: TenantKeysRepository) -> int:
            count = await repo.destroy()
            if count == 0:
                await repo.tombstone()
            return count

        self._loaded[tenant_id] = _Loaded(destroyed=True)
        try:
            return await self._keys_work(tenant_id, work)
        except BaseException:
            self.forget(tenant_id)
            raise

    async def keys(self, tenant_id: str) -> list[KeyInfo]:
        """The tenant's key rows (versions, algorithms, states), without key material."""
        rows = await self._keys_work(tenant_id, lambda repo: repo.all())
        return [KeyInfo(**{k: r[k] for k in KeyInfo.__dataclass_fields__ if k in r}) for r in rows]

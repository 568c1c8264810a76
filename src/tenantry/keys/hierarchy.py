"""The key hierarchy's operations on ``tenant_keys`` rows: create, unwrap and re-wrap keys.

The root provider wraps a tenant's KEKs (``aes256gcm-root``, or ``x25519-mlkem768-hkdf-aes256gcm``
for quantum tenants) under one of its versions (``root_key_version``; NULL on rows made before
migration 0005 means 1); a KEK wraps data keys (``aes256gcm-kek``), each bound by its associated
data to the tenant and the versions involved (``crypto.kek_context`` / ``data_key_context``).
:class:`~tenantry.keys.manager.Keyring` calls this inside its key transactions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.engine import RowMapping

from tenantry.errors import ConfigError, DecryptionError, KeysDestroyed
from tenantry.keys import crypto
from tenantry.keys.kem import hybrid_unwrap, hybrid_wrap
from tenantry.keys.provider import HybridKeyProvider, KeyProvider
from tenantry.keys.repository import TenantKeysRepository

__all__ = ["KeyHierarchy", "Progress", "is_destroyed", "newest_kek_is_hybrid", "root_version"]

#: ``progress(done, total)``, called after each re-wrapped key.
Progress = Callable[[int, int], None]


def is_destroyed(rows: Sequence[RowMapping]) -> bool:
    return any(r["destroyed_at"] is not None for r in rows)


def newest_kek_is_hybrid(rows: Sequence[RowMapping]) -> bool:
    keks = [r for r in rows if r["purpose"] == "kek"]
    return bool(keks) and max(keks, key=lambda r: r["version"])["algorithm"] == crypto.ALG_HYBRID


def root_version(row: RowMapping) -> int:
    """The root key version that wraps a KEK row."""
    return int(row["root_key_version"] or 1)


class KeyHierarchy:
    """KEKs under the root ``provider``, data keys under KEKs."""

    def __init__(self, provider: KeyProvider) -> None:
        self.provider = provider

    async def current_root(self) -> int:
        """The root key version new KEKs are wrapped under (the provider's newest)."""
        versions = await self.provider.versions()
        if not versions:
            raise ConfigError(f"root key {self.provider.key_id} has no versions")
        return max(versions)

    async def wrap_kek(
        self, tenant_id: str, version: int, kek: bytes, quantum: bool, root: int
    ) -> tuple[str, bytes]:
        """(algorithm, KEK ``version`` wrapped under root key version ``root``)."""
        context = crypto.kek_context(tenant_id, version)
        if not quantum:
            return crypto.ALG_ROOT, await self.provider.wrap(kek, context, version=root)
        if not isinstance(self.provider, HybridKeyProvider):
            raise ConfigError(f"root key {self.provider.key_id} cannot wrap hybrid (quantum) keys")
        return crypto.ALG_HYBRID, hybrid_wrap(self.provider, kek, context, version=root)

    async def unwrap_kek(self, tenant_id: str, row: RowMapping) -> bytes:
        context = crypto.kek_context(tenant_id, row["version"])
        root = root_version(row)
        if row["algorithm"] == crypto.ALG_ROOT:
            return await self.provider.unwrap(row["wrapped_key"], context, version=root)
        if row["algorithm"] == crypto.ALG_HYBRID and isinstance(self.provider, HybridKeyProvider):
            return await hybrid_unwrap(self.provider, row["wrapped_key"], context, version=root)
        raise DecryptionError(
            f"KEK {row['version']} of tenant {tenant_id!r}: root key {self.provider.key_id} "
            f"cannot unwrap algorithm {row['algorithm']!r}"
        )

    async def create(
        self, repo: TenantKeysRepository, kek_version: int, data_version: int, quantum: bool
    ) -> None:
        """Add a new KEK and a new data key wrapped by it; retire the older ones."""
        tenant_id = repo.tenant_id
        kek, data_key = crypto.new_key(), crypto.new_key()
        root = await self.current_root()
        algorithm, wrapped_kek = await self.wrap_kek(tenant_id, kek_version, kek, quantum, root)
        context = crypto.data_key_context(tenant_id, data_version, kek_version)
        wrapped_data = crypto.aead_wrap(kek, data_key, context)
        await repo.add("kek", kek_version, algorithm, wrapped_kek, root_key_version=root)
        await repo.add("data", data_version, crypto.ALG_DATA, wrapped_data, kek_version=kek_version)
        await repo.retire_before("kek", kek_version)
        await repo.retire_before("data", data_version)

    async def rotate(
        self, repo: TenantKeysRepository, rows: Sequence[RowMapping], quantum: bool
    ) -> None:
        """The next KEK (hybrid if ``quantum``) and data key versions after ``rows``."""
        if is_destroyed(rows):
            raise KeysDestroyed(f"the keys of tenant {repo.tenant_id!r} were destroyed")
        keks = [r["version"] for r in rows if r["purpose"] == "kek"]
        data_versions = [r["version"] for r in rows if r["purpose"] == "data"]
        await self.create(
            repo, max(keks, default=0) + 1, max(data_versions, default=0) + 1, quantum
        )

    async def rewrap_root(self, repo: TenantKeysRepository, root: int) -> int:
        """Re-wrap every live KEK of the tenant under root key version ``root`` (each keeps its
        kind, classic or hybrid); returns how many were re-wrapped."""
        tenant_id = repo.tenant_id
        count = 0
        for row in await repo.all():
            if row["purpose"] != "kek" or row["wrapped_key"] is None or root_version(row) == root:
                continue
            kek = await self.unwrap_kek(tenant_id, row)
            hybrid = row["algorithm"] == crypto.ALG_HYBRID
            _, wrapped = await self.wrap_kek(tenant_id, row["version"], kek, hybrid, root)
            count += await repo.rewrap_kek(row["version"], wrapped, root)
        return count

    async def data_keys(self, tenant_id: str, rows: Sequence[RowMapping]) -> dict[int, bytes]:
        """Every data key of the tenant, unwrapped, by version."""
        keks = {r["version"]: r for r in rows if r["purpose"] == "kek"}
        plain_keks: dict[int, bytes] = {}
        keys: dict[int, bytes] = {}
        for row in rows:
            if row["purpose"] != "data":
                continue
            kek_version = row["kek_version"]
            if kek_version not in plain_keks:
                plain_keks[kek_version] = await self.unwrap_kek(tenant_id, keks[kek_version])
            context = crypto.data_key_context(tenant_id, row["version"], kek_version)
            what = f"data key {row['version']} of tenant {tenant_id!r}"
            keys[row["version"]] = crypto.aead_unwrap(
                plain_keks[kek_version], row["wrapped_key"], context, what=what
            )
        return keys

    async def rewrap(self, repo: TenantKeysRepository, progress: Progress | None) -> int:
        """Re-wrap every data key under the newest KEK; returns how many were re-wrapped."""
        tenant_id = repo.tenant_id
        rows = await repo.all()
        if is_destroyed(rows):
            raise KeysDestroyed(f"the keys of tenant {tenant_id!r} were destroyed")
        keks = {r["version"]: r for r in rows if r["purpose"] == "kek"}
        if not keks:
            return 0
        newest = max(keks)
        todo = [r for r in rows if r["purpose"] == "data" and r["kek_version"] != newest]
        plain = {newest: await self.unwrap_kek(tenant_id, keks[newest])}
        for done, row in enumerate(todo, 1):
            old, version = row["kek_version"], row["version"]
            if old not in plain:
                plain[old] = await self.unwrap_kek(tenant_id, keks[old])
            what = f"data key {version} of tenant {tenant_id!r}"
            old_context = crypto.data_key_context(tenant_id, version, old)
            key = crypto.aead_unwrap(plain[old], row["wrapped_key"], old_context, what=what)
            new_context = crypto.data_key_context(tenant_id, version, newest)
            await repo.rewrap(version, crypto.aead_wrap(plain[newest], key, new_context), newest)
            if progress is not None:
                progress(done, len(todo))
        return len(todo)

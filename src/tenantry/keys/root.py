"""Root key rotation: a new root key version, every tenant's KEKs re-wrapped, old versions retired.

1. The provider makes a new version (a :class:`~tenantry.keys.provider.RotatableKeyProvider`;
   with a KMS, rotate there and pass ``resume=True``). From then on, every process wraps new KEKs
   under it: providers are asked for their versions before each wrap.
2. Every tenant of the registry (``tenants`` is global; its KEK rows are behind row-level
   security) is visited in a key transaction of its own, under the tenant's key lock: each live
   KEK not under the newest version is unwrapped and wrapped again under it, keeping its kind
   (``aes256gcm-root`` or hybrid X25519 + ML-KEM-768: the hybrid wrapping uses the new version's
   X25519 and ML-KEM keys, which the file provider derives from the new version's secret), and
   its row records the new ``root_key_version``. Data keys and records do not change, so caches
   stay valid. An interrupted rotation is finished with ``resume=True``; it is idempotent.
3. Retiring checks every tenant first: while any live KEK is wrapped by an older version, it
   refuses with :class:`~tenantry.errors.Conflict` and changes nothing. Otherwise the provider
   forgets the old versions, so backups of ``tenant_keys`` made before can no longer be
   unwrapped (which is what makes crypto-shredding final), and every listening process re-reads
   its provider.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from tenantry.context import current_tenant
from tenantry.db.engine import Database
from tenantry.errors import ConfigError, Conflict, TenantContextError
from tenantry.keys.hierarchy import KeyHierarchy, Progress
from tenantry.keys.provider import RotatableKeyProvider
from tenantry.keys.repository import TenantKeysRepository
from tenantry.keys.signal import KeySignal, notify
from tenantry.tenants.manager import TenantRegistry

__all__ = ["RootKeys", "RootRotation"]

_T = TypeVar("_T")
_PAGE = 1000


class KeysWork(Protocol):
    """Runs ``work`` in a key transaction of the tenant, under its lock (``Keyring``'s)."""

    def __call__(
        self, tenant_id: str, work: Callable[[TenantKeysRepository], Awaitable[_T]]
    ) -> Awaitable[_T]: ...


@dataclass(frozen=True, slots=True)
class RootRotation:
    """What :meth:`Keyring.rotate_root` did."""

    #: The root key version every live KEK is now wrapped under.
    version: int
    #: Tenants visited.
    tenants: int
    #: KEKs re-wrapped.
    rewrapped: int
    #: Root key versions retired (with ``retire=True``).
    retired: tuple[int, ...] = ()


class RootKeys:
    """The root rotation of one Keyring (its database, hierarchy and key transactions)."""

    def __init__(self, database: Database, hierarchy: KeyHierarchy, work: KeysWork) -> None:
        self.database = database
        self.hierarchy = hierarchy
        self.provider = hierarchy.provider
        self.work = work

    def _rotatable(self, doing: str) -> RotatableKeyProvider:
        if not isinstance(self.provider, RotatableKeyProvider):
            raise ConfigError(
                f"root key {self.provider.key_id} cannot {doing} itself: do it in its key store "
                "(then rotate_root(resume=True) re-wraps the tenant keys)"
            )
        return self.provider

    async def _tenants(self) -> list[str]:
        if current_tenant() is not None:
            raise TenantContextError("the root key spans every tenant: call it outside a scope")
        registry, ids, after = TenantRegistry(self.database), [], None
        while page := await registry.list(after=after, limit=_PAGE):
            ids += [tenant.id for tenant in page]
            after = page[-1].id
        return ids

    async def _signal(self, version: int) -> None:
        async with self.database.transaction() as conn:
            await notify(conn, KeySignal("root", None, version))

    async def rotate(
        self, *, resume: bool, retire: bool, progress: Progress | None
    ) -> RootRotation:
        tenants = await self._tenants()
        if resume:
            version = await self.hierarchy.current_root()
        else:
            version = await self._rotatable("add a version").add_version()
        rewrapped = 0
        for done, tenant_id in enumerate(tenants, 1):
            rewrapped += await self.work(
                tenant_id, lambda repo: self.hierarchy.rewrap_root(repo, version)
            )
            if progress is not None:
                progress(done, len(tenants))
        await self._signal(version)
        retired = await self.retire(None) if retire else ()
        return RootRotation(version, len(tenants), rewrapped, retired)

    async def retire(self, progress: Progress | None) -> tuple[int, ...]:
        provider = self._rotatable("retire versions")
        tenants = await self._tenants()
        newest = await self.hierarchy.current_root()
        old = tuple(v for v in await provider.versions() if v < newest)
        if not old:
            return ()
        in_use: dict[int, list[str]] = {}
        for done, tenant_id in enumerate(tenants, 1):
            for version in await self.work(tenant_id, _root_versions):
                if version < newest:
                    in_use.setdefault(version, []).append(tenant_id)
            if progress is not None:
                progress(done, len(tenants))
        if in_use:
            users = sorted({t for names in in_use.values() for t in names})
            raise Conflict(
                f"cannot retire root key version(s) {', '.join(map(str, old))}: {len(users)} "
                f"tenant(s) still have KEKs wrapped by version(s) "
                f"{', '.join(map(str, sorted(in_use)))} (e.g. {', '.join(map(repr, users[:3]))})"
                "; finish the rotation first (tenantry keys rotate-root --resume)"
            )
        await provider.retire_versions(old)
        await self._signal(newest)
        return old


async def _root_versions(repo: TenantKeysRepository) -> set[int]:
    return await repo.root_versions()

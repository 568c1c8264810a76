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

With ``record`` (the SecurityManager's, see ``changes.py``) each step is audited where it
happens: ``rotate_root`` outcome ``started`` and ``retire_root`` in a platform transaction that
stays open while the key file changes (the file changes only once its entry is written; only a
failed COMMIT after the file changed leaves it unrecorded); ``rewrap_root`` in the key
transaction of each tenant whose KEKs were re-wrapped; ``rotate_root`` outcome ``success`` once
every tenant is done. A rotation stopped by a failed entry is finished with ``resume=True``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar

from tenantry.context import PLATFORM_TENANT, current_tenant, tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import ConfigError, Conflict, TenantContextError
from tenantry.keys.changes import KeyChange, RecordKeyChange
from tenantry.keys.hierarchy import KeyHierarchy, Progress
from tenantry.keys.provider import RotatableKeyProvider
from tenantry.keys.repository import TenantKeysRepository
from tenantry.keys.signal import KeySignal, notify
from tenantry.tenants.manager import TenantRegistry

__all__ = ["RootKeys", "RootRotation"]

_T = TypeVar("_T")
_PAGE = 1000


class KeysWork(Protocol):
    """Runs ``work`` in a key transaction of the tenant, under its lock, ready for ``record``
    (``Keyring._change``)."""

    def __call__(
        self,
        tenant_id: str,
        work: Callable[[TenantKeysRepository], Awaitable[_T]],
        record: RecordKeyChange | None = None,
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
    """The root rotation of one Keyring (its database, hierarchy and key transactions), audited
    by ``record`` if given."""

    def __init__(
        self,
        database: Database,
        hierarchy: KeyHierarchy,
        work: KeysWork,
        record: RecordKeyChange | None = None,
    ) -> None:
        self.database = database
        self.hierarchy = hierarchy
        self.provider = hierarchy.provider
        self.work = work
        self.record = record

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

    @asynccontextmanager
    async def _recorded(self, change: KeyChange) -> AsyncIterator[None]:
        """Record ``change`` in a platform transaction that stays open around the block (a
        change of the key file): the block runs only once the entry is written, and the entry
        commits only if the block succeeds."""
        if self.record is None:
            yield
            return
        with tenant_scope(PLATFORM_TENANT):
            async with self.database.tenant_transaction():
                await self.record(change)
                yield

    async def _record(self, change: KeyChange) -> None:
        """Record ``change`` in a platform transaction of its own."""
        async with self._recorded(change):
            pass

    async def rotate(
        self, *, resume: bool, retire: bool, progress: Progress | None
    ) -> RootRotation:
        tenants = await self._tenants()
        if resume:
            version = await self.hierarchy.current_root()
        else:
            provider = self._rotatable("add a version")
            detail = {"from_version": await self.hierarchy.current_root()}
            async with self._recorded(KeyChange("rotate_root", None, detail, "started")):
                version = await provider.add_version()

        async def rewrap(repo: TenantKeysRepository) -> int:
            count = await self.hierarchy.rewrap_root(repo, version)
            if count and self.record is not None:
                detail = {"version": version, "rewrapped": count}
                await self.record(KeyChange("rewrap_root", repo.tenant_id, detail))
            return count

        rewrapped = 0
        for done, tenant_id in enumerate(tenants, 1):
            rewrapped += await self.work(tenant_id, rewrap, self.record)
            if progress is not None:
                progress(done, len(tenants))
        await self._signal(version)
        detail = {"version": version, "tenants": len(tenants), "rewrapped": rewrapped}
        await self._record(KeyChange("rotate_root", None, {**detail, "resume": resume}))
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
        async with self._recorded(KeyChange("retire_root", None, {"retired": list(old)})):
            await provider.retire_versions(old)
        await self._signal(newest)
        return old


async def _root_versions(repo: TenantKeysRepository) -> set[int]:
    return await repo.root_versions()

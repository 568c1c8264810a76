"""SQL on ``tenant_keys``: a tenant's KEKs and data keys (always inside a tenant transaction)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping

from tenantry.db.repository import TenantRepository
from tenantry.keys.models import tenant_keys
from tenantry.keys.signal import Event, KeySignal, notify

__all__ = ["TenantKeysRepository"]

_LOCK_NAMESPACE = "tenantry.tenant_keys:"


class TenantKeysRepository(TenantRepository):
    async def lock(self) -> None:
        """Serialize key changes of this tenant (creation, rotation, rewrap, destruction)."""
        key = func.hashtext(_LOCK_NAMESPACE + self.tenant_id)
        await self.conn.execute(select(func.pg_advisory_xact_lock(key)))

    async def all(self) -> Sequence[RowMapping]:
        query = select(tenant_keys).order_by(tenant_keys.c.purpose, tenant_keys.c.version)
        return (await self.conn.execute(query)).mappings().all()

    async def add(
        self,
        purpose: str,
        version: int,
        algorithm: str,
        wrapped_key: bytes,
        *,
        kek_version: int | None = None,
        root_key_version: int | None = None,
    ) -> bool:
        """Insert a key; False if that (purpose, version) exists already."""
        statement = (
            insert(tenant_keys)
            .values(
                tenant_id=self.tenant_id,
                purpose=purpose,
                version=version,
                algorithm=algorithm,
                wrapped_key=wrapped_key,
                kek_version=kek_version,
                root_key_version=root_key_version,
            )
            .on_conflict_do_nothing()
            .returning(tenant_keys.c.version)
        )
        return (await self.conn.execute(statement)).first() is not None

    async def retire_before(self, purpose: str, version: int) -> None:
        """Mark every older key of ``purpose`` retired (kept for decryption)."""
        statement = (
            update(tenant_keys)
            .where(
                tenant_keys.c.purpose == purpose,
                tenant_keys.c.version < version,
                tenant_keys.c.retired_at.is_(None),
            )
            .values(retired_at=func.now())
        )
        await self.conn.execute(statement)

    async def rewrap(self, version: int, wrapped_key: bytes, kek_version: int) -> bool:
        """Store a data key re-wrapped under KEK ``kek_version``; False if it was destroyed."""
        return await self._rewrap("data", version, wrapped_key=wrapped_key, kek_version=kek_version)

    async def rewrap_kek(self, version: int, wrapped_key: bytes, root_key_version: int) -> bool:
        """Store KEK ``version`` re-wrapped under root key ``root_key_version``."""
        return await self._rewrap(
            "kek", version, wrapped_key=wrapped_key, root_key_version=root_key_version
        )

    async def _rewrap(self, purpose: str, version: int, **values: object) -> bool:
        """Update a live (not destroyed) key's wrapping; False if there is none."""
        statement = (
            update(tenant_keys)
            .where(
                tenant_keys.c.purpose == purpose,
                tenant_keys.c.version == version,
                tenant_keys.c.destroyed_at.is_(None),
            )
            .values(**values)
            .returning(tenant_keys.c.version)
        )
        return (await self.conn.execute(statement)).first() is not None

    async def root_versions(self) -> set[int]:
        """The root key versions that wrap the tenant's live KEKs (NULL: made before 0005, 1)."""
        query = select(func.coalesce(tenant_keys.c.root_key_version, 1)).where(
            tenant_keys.c.purpose == "kek", tenant_keys.c.wrapped_key.is_not(None)
        )
        return set((await self.conn.execute(query.distinct())).scalars())

    async def tombstone(self) -> None:
        """Record that the tenant's keys are destroyed when it never had any (KEK version 0)."""
        statement = (
            insert(tenant_keys)
            .values(
                tenant_id=self.tenant_id,
                purpose="kek",
                version=0,
                algorithm="destroyed",
                wrapped_key=None,
                destroyed_at=func.now(),
            )
            .on_conflict_do_nothing()
        )
        await self.conn.execute(statement)

    async def destroy(self) -> int:
        """Crypto-shredding: forget every wrapped key of the tenant. Returns the rows changed."""
        statement = (
            update(tenant_keys)
            .where(tenant_keys.c.destroyed_at.is_(None))
            .values(wrapped_key=None, destroyed_at=func.now())
            .returning(tenant_keys.c.version)
        )
        return len((await self.conn.execute(statement)).all())

    async def notify(self, event: Event, version: int) -> None:
        """Tell every process (:mod:`~tenantry.keys.signal`) once this commits."""
        await notify(self.conn, KeySignal(event, self.tenant_id, version))

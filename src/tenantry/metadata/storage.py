"""Each tenant's stored metadata content, in bytes, held to a limit (its tier's ``storage_bytes``).

What counts: the stored bytes of every version of every record (the encoded ``payload`` and the
``sealed`` part), as :func:`version_bytes` measures them; the history counts as it is stored.

**The running total.** Summing the tenant's versions on every write is O(rows). The total is kept
instead in the managed setting :data:`STORAGE_SETTING` of ``tenant_settings`` and changed in the
write's own transaction: a new version adds its bytes (an ``UPDATE ... RETURNING`` of one row,
which also serialises the tenant's writes on that row until they commit), deleting a record
subtracts its versions' bytes. A write the limit refuses raises
:class:`~tenantry.errors.StorageQuotaExceeded` (413) and its transaction rolls back whole: nothing
is stored, the total is unchanged. A tenant without the setting yet (data written before the
total existed) gets it from one exact sum at its first write; :meth:`StorageUsage.recount`
replaces the total with the exact sum whenever it may have drifted (the metadata manager's
``recount_storage``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from sqlalchemy import BigInteger, cast, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert

from tenantry.db.repository import TenantRepository
from tenantry.errors import StorageQuotaExceeded
from tenantry.metadata.models import metadata_versions
from tenantry.tenants.models import tenant_settings

__all__ = ["STORAGE_SETTING", "StorageLimit", "StorageUsage", "version_bytes"]

#: The tenant setting holding its stored bytes (managed: only the metadata manager writes it).
STORAGE_SETTING: Final = "metadata.storage_bytes"
#: The bytes a tenant may store (``None``: no limit), asked before each write's transaction.
StorageLimit = Callable[[str], Awaitable[int | None]]

_S, _V = tenant_settings, metadata_versions
_STORED = func.octet_length(_V.c.payload) + func.coalesce(func.octet_length(_V.c.sealed), 0)
_TOTAL = cast(_S.c.value.op("#>>")(literal_column("'{}'::text[]")), BigInteger)


def version_bytes(payload: bytes, sealed: bytes | None) -> int:
    """The bytes one stored version counts for."""
    return len(payload) + (len(sealed) if sealed is not None else 0)


class StorageUsage(TenantRepository):
    """The tenant's running total, inside its write transaction."""

    async def _exact(self) -> int:
        return int(await self.conn.scalar(select(func.coalesce(func.sum(_STORED), 0))) or 0)

    async def _add(self, size: int) -> int:
        """Add ``size`` to the total (made from the exact sum if absent); the new total."""
        total = await self.conn.scalar(
            update(_S)
            .where(_S.c.key == STORAGE_SETTING)
            .values(value=func.to_jsonb(_TOTAL + size), updated_at=func.now())
            .returning(_TOTAL)
        )
        if total is None:
            start = await self._exact() + size
            total = await self.conn.scalar(
                insert(_S)
                .values(tenant_id=self.tenant_id, key=STORAGE_SETTING, value=func.to_jsonb(start))
                .on_conflict_do_update(
                    index_elements=[_S.c.tenant_id, _S.c.key],
                    set_={"value": func.to_jsonb(_TOTAL + size), "updated_at": func.now()},
                )
                .returning(_TOTAL)
            )
        return int(total or 0)

    async def charge(self, size: int, limit: int | None) -> int:
        """Count ``size`` more bytes; :class:`StorageQuotaExceeded` past ``limit`` (the caller's
        transaction then rolls back, the total with it). The new total."""
        total = await self._add(size)
        if limit is not None and total > limit:
            raise StorageQuotaExceeded(
                f"tenant {self.tenant_id!r} would store {total:,} bytes of metadata, more than "
                f"its tier's {limit:,}: delete records (or their history) or change its tier"
            )
        return total

    async def release(self, record_id: str) -> int:
        """Count a record's versions out (before deleting it); the new total."""
        freed = await self.conn.scalar(
            select(func.coalesce(func.sum(_STORED), 0)).where(_V.c.record_id == record_id)
        )
        return await self._add(-int(freed or 0))

    async def used(self) -> int:
        """The total now (the exact sum if there is none yet)."""
        total = await self.conn.scalar(select(_TOTAL).where(_S.c.key == STORAGE_SETTING))
        return await self._exact() if total is None else int(total)

    async def recount(self) -> int:
        """Replace the total with the exact sum of the tenant's versions; that sum."""
        exact = await self._exact()
        await self.conn.execute(
            insert(_S)
            .values(tenant_id=self.tenant_id, key=STORAGE_SETTING, value=func.to_jsonb(exact))
            .on_conflict_do_update(
                index_elements=[_S.c.tenant_id, _S.c.key],
                set_={"value": func.to_jsonb(exact), "updated_at": func.now()},
            )
        )
        return exact

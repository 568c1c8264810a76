"""SQL of metadata records and their versions (the search statements are in ``search.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, literal, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import RowMapping

from tenantry.db.repository import TenantRepository
from tenantry.metadata.models import metadata_records, metadata_versions

__all__ = ["MetadataRepository", "NewVersion"]

_R, _V = metadata_records, metadata_versions
#: What a record read returns: the record's columns and its current version's content.
_RECORD_COLUMNS = (
    _R.c.id,
    _R.c.metadata_type,
    _R.c.schema_name,
    _R.c.schema_version,
    _R.c.version,
    _R.c.language,
    _R.c.sensitive_fields,
    _R.c.created_at,
    _R.c.updated_at,
    _R.c.created_by,
    _R.c.updated_by,
    (_R.c.embedded_version == _R.c.version).label("embedded"),
    _V.c.encoding,
    _V.c.payload,
    _V.c.sealed,
)
_CURRENT = and_(
    _V.c.tenant_id == _R.c.tenant_id, _V.c.record_id == _R.c.id, _V.c.version == _R.c.version
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewVersion:
    """A version to write: the record's header and its encoded content."""

    metadata_type: str
    schema_name: str | None
    schema_version: int | None
    language: str | None
    text_config: str
    fields: Mapping[str, Any]
    search_text: str
    sensitive_fields: Sequence[str]
    encoding: int
    payload: bytes
    sealed: bytes | None


def _regconfig(name: str) -> Any:
    """The text search configuration ``name``, or ``simple`` where the server lacks it."""
    found = (
        select(text("oid::regconfig"))
        .select_from(text("pg_ts_config"))
        .where(text("cfgname = :cfg").bindparams(cfg=name))
    )
    return func.coalesce(found.scalar_subquery(), text("'simple'::regconfig"))


class MetadataRepository(TenantRepository):
    async def create(self, record_id: str, new: NewVersion, actor: str | None) -> RowMapping:
        values = self._header(new) | {
            "tenant_id": self.tenant_id,
            "id": record_id,
            "version": 1,
            "created_by": actor,
            "updated_by": actor,
        }
        row = (
            (
                await self.conn.execute(
                    insert(_R).values(**values).returning(_R.c.created_at, _R.c.updated_at)
                )
            )
            .mappings()
            .one()
        )
        await self._version(record_id, 1, new, "create", actor)
        return row

    async def write(
        self, record_id: str, version: int, new: NewVersion, change: str, actor: str | None
    ) -> None:
        """Make ``version`` (the one after the locked current one) the record's current one."""
        await self._version(record_id, version, new, change, actor)
        # The old version's vector goes with it: a stored embedding is always the current
        # version's, so the search can leave the index scan unfiltered (see ``search.py``).
        values = self._header(new) | {
            "version": version,
            "embedding": None,
            "updated_at": func.now(),
            "updated_by": actor,
        }
        await self.conn.execute(update(_R).where(_R.c.id == record_id).values(**values))

    def _header(self, new: NewVersion) -> dict[str, Any]:
        return {
            "metadata_type": new.metadata_type,
            "schema_name": new.schema_name,
            "schema_version": new.schema_version,
            "language": new.language,
            "text_config": _regconfig(new.text_config),
            "fields": literal(dict(new.fields), JSONB),
            "search_text": new.search_text,
            "sensitive_fields": list(new.sensitive_fields),
        }

    async def _version(
        self, record_id: str, version: int, new: NewVersion, change: str, actor: str | None
    ) -> None:
        await self.conn.execute(
            insert(_V).values(
                tenant_id=self.tenant_id,
                record_id=record_id,
                version=version,
                metadata_type=new.metadata_type,
                schema_name=new.schema_name,
                schema_version=new.schema_version,
                encoding=new.encoding,
                payload=new.payload,
                sealed=new.sealed,
                change=change,
                created_by=actor,
            )
        )

    async def current_version(self, record_id: str, *, lock: bool = False) -> int | None:
        """The record's current version number (locked until the transaction ends)."""
        query = select(_R.c.version).where(_R.c.id == record_id)
        value = await self.conn.scalar(query.with_for_update() if lock else query)
        return None if value is None else int(value)

    async def get(self, record_id: str, *, lock: bool = False) -> RowMapping | None:
        """The record and its current version's content (``lock``: the record locked until
        the transaction ends, to write its next version)."""
        query = select(*_RECORD_COLUMNS).join(_V, _CURRENT).where(_R.c.id == record_id)
        if lock:
            query = query.with_for_update(of=_R)
        return (await self.conn.execute(query)).mappings().first()

    async def get_many(self, record_ids: Sequence[str]) -> Sequence[RowMapping]:
        query = select(*_RECORD_COLUMNS).join(_V, _CURRENT).where(_R.c.id.in_(record_ids))
        return (await self.conn.execute(query)).mappings().all()

    async def version(self, record_id: str, version: int) -> RowMapping | None:
        query = select(_V).where(_V.c.record_id == record_id, _V.c.version == version)
        return (await self.conn.execute(query)).mappings().first()

    async def versions(self, record_id: str, limit: int) -> Sequence[RowMapping]:
        """The latest ``limit`` versions, oldest first."""
        query = (
            select(_V).where(_V.c.record_id == record_id).order_by(_V.c.version.desc()).limit(limit)
        )
        return list(reversed((await self.conn.execute(query)).mappings().all()))

    async def delete(self, record_id: str) -> None:
        await self.conn.execute(delete(_R).where(_R.c.id == record_id))

    async def page(
        self,
        *,
        metadata_type: str | None,
        schema_name: str | None,
        fields: Mapping[str, Any],
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> Sequence[RowMapping]:
        """Records newest first, ``limit`` after the cursor ``after`` (created_at, id)."""
        query = (
            select(*_RECORD_COLUMNS)
            .join(_V, _CURRENT)
            .order_by(_R.c.created_at.desc(), _R.c.id.desc())
            .limit(limit)
        )
        if metadata_type is not None:
            query = query.where(_R.c.metadata_type == metadata_type)
        if schema_name is not None:
            query = query.where(_R.c.schema_name == schema_name)
        if fields:
            query = query.where(_R.c.fields.contains(literal(dict(fields), JSONB)))
        if after is not None:
            query = query.where(tuple_(_R.c.created_at, _R.c.id) < tuple_(*after))
        return (await self.conn.execute(query)).mappings().all()

    async def stale(
        self, schema_name: str, below: int, after: str | None, limit: int
    ) -> Sequence[str]:
        """Ids of records of ``schema_name`` written with a version below ``below``, in id order."""
        query = (
            select(_R.c.id)
            .where(_R.c.schema_name == schema_name, _R.c.schema_version < below)
            .order_by(_R.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(_R.c.id > after)
        return list((await self.conn.scalars(query)).all())

    async def count_stale(self, schema_name: str, below: int) -> int:
        """How many records of ``schema_name`` are written with a version below ``below``."""
        query = select(func.count()).where(
            _R.c.schema_name == schema_name, _R.c.schema_version < below
        )
        return int(await self.conn.scalar(query) or 0)

"""MetadataManager: typed records with immutable versions, searched by text and by meaning.

Every change writes a version (``metadata_versions``, immutable) and an audit entry in the same
transaction (``metadata.create``, ``metadata.update``, ``metadata.rollback``,
``metadata.delete``; the record's id, version, type and schema, never its content). An update
names the version it read and fails with :class:`~tenantry.errors.VersionConflict` when the
record has moved on. Ids name their tenant (``md_<tenant>.<random>``), so a request for another
tenant's record is recognised as a probe by the HTTP layer before any lookup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import BulkheadFull, InvalidInput, MetadataNotFound, VersionConflict
from tenantry.keys import Keyring
from tenantry.metadata.embedding import Embedder
from tenantry.metadata.encoder import Encoder, default_encoder
from tenantry.metadata.inputs import (
    MAX_LIMIT,
    check_fields,
    check_search,
    decode_cursor,
    encode_cursor,
    version_number,
)
from tenantry.metadata.repository import MetadataRepository
from tenantry.metadata.schemas import (
    MetadataPage,
    MetadataRecord,
    MetadataSearch,
    MetadataType,
    MetadataVersion,
    SearchHit,
)
from tenantry.metadata.search import Filters, Query, VectorStore, run_search
from tenantry.metadata.versions import check_sensitive, compose, open_content
from tenantry.sessions.tokens import make_id, tenant_of_id
from tenantry.validation import parse_enum

__all__ = ["ID_PREFIX", "MetadataManager", "MetadataManagerFactory"]

ID_PREFIX = "md"
_MAX_HISTORY = 1000


class MetadataManager(RecordsChanges):
    """The documents' Metadata Manager. Made with no arguments it shares the process's database.

    ``encoder`` embeds queries and records (default: :func:`~tenantry.metadata.encoder.
    default_encoder`, loaded on first use); :attr:`embedder` embeds new and changed records in
    the background once :meth:`initialize` started it (or on demand: ``embed_pending``).
    """

    def __init__(
        self,
        database: Database | None = None,
        *,
        audit: ChangeLog | None = None,
        keyring: Keyring | None = None,
        encoder: Encoder | None = None,
        embed_interval: float = 0.2,
        max_encodings: int = 4,
    ) -> None:
        self._database = database
        self._audit = audit
        self._keyring = keyring
        self._encoder = encoder
        self._store: VectorStore | None = None
        self._store_lock = asyncio.Lock()
        self._encodings: dict[str, int] = {}
        #: Searches by meaning one tenant may have waiting for the (shared) encoder at once.
        self.max_encodings = max_encodings
        self.embedder = Embedder(
            database, encoder=self.encoder, store=self.vector_store, interval=embed_interval
        )

    # -- resources --------------------------------------------------------------------------------

    async def encoder(self) -> Encoder:
        """The encoder; the default model is loaded on first use, off the event loop."""
        if self._encoder is None:
            self._encoder = await asyncio.to_thread(default_encoder)
        return self._encoder

    async def vector_store(self) -> VectorStore:
        """The statements for this database's embedding column (pgvector or an array)."""
        if self._store is None:
            async with self._store_lock:
                if self._store is None:
                    async with (await self._db()).transaction() as conn:
                        self._store = await VectorStore.detect(conn)
        return self._store

    async def _keys(self, tenant_id: str) -> Keyring:
        if self._keyring is None:
            self._keyring = Keyring(await self._db())
        await self._keyring.load(tenant_id)
        return self._keyring

    async def initialize(self) -> None:
        """Open the database and start embedding in the background (the documents' call)."""
        await self.vector_store()
        await self.embedder.start()

    async def close(self) -> None:
        await self.embedder.close()

    async def embed_pending(self, tenant_id: str) -> int:
        """Embed every record of ``tenant_id`` that is not searchable by meaning yet, now."""
        if self.embedder._database is None:  # share the manager's database
            self.embedder._database = await self._db()
        return await self.embedder.embed_all(tenant_id)

    # -- records ----------------------------------------------------------------------------------

    async def create_metadata(
        self,
        tenant_id: str,
        metadata_type: MetadataType | str,
        content: Mapping[str, Any],
        schema_name: str | None = None,
        *,
        schema_version: int | None = None,
        language: str | None = None,
        sensitive: bool = False,
        sensitive_fields: Sequence[str] = (),
        actor: str | None = None,
    ) -> str:
        """Store a new record (version 1); its id."""
        validate_tenant_id(tenant_id)
        kind = parse_enum(MetadataType, metadata_type)
        hidden = check_sensitive(sensitive, sensitive_fields)
        record_id = make_id(ID_PREFIX, tenant_id)
        keyring, trail, db = (
            await self._keys(tenant_id),
            await self._trail(tenant_id),
            await self._db(),
        )
        new = compose(
            keyring,
            tenant_id,
            record_id,
            1,
            content,
            metadata_type=kind.value,
            schema_name=schema_name,
            schema_version=schema_version,
            language=language,
            sensitive_fields=hidden,
        )
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                await MetadataRepository(conn).create(record_id, new, actor)
                await self._record(
                    trail,
                    tenant_id=tenant_id,
                    action="metadata.create",
                    record_id=record_id,
                    version=1,
                    new=new,
                    actor=actor,
                )
        self.embedder.notice(tenant_id)
        return record_id

    async def get_metadata(self, tenant_id: str, metadata_id: str) -> MetadataRecord:
        """The record at its current version."""
        self._check_id(tenant_id, metadata_id)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                row = await MetadataRepository(conn).get(metadata_id)
        if row is None:
            raise MetadataNotFound(f"metadata {metadata_id!r} does not exist")
        return await self._record_of(tenant_id, row)

    async def update_metadata(
        self,
        tenant_id: str,
        metadata_id: str,
        content: Mapping[str, Any],
        *,
        expected_version: int,
        schema_version: int | None = None,
        language: str | None = None,
        sensitive: bool | None = None,
        sensitive_fields: Sequence[str] | None = None,
        actor: str | None = None,
    ) -> MetadataRecord:
        """Write ``content`` as the next version of a record read at ``expected_version``.

        The record keeps its type, schema, language and sensitive fields unless given; a record
        that names a schema may move to a later ``schema_version``.
        """
        self._check_id(tenant_id, metadata_id)
        expected = version_number(expected_version, "expected_version")
        keyring, trail, db = (
            await self._keys(tenant_id),
            await self._trail(tenant_id),
            await self._db(),
        )
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                repo = MetadataRepository(conn)
                current = await self._locked(repo, metadata_id, expected)
                hidden = (
                    list(current["sensitive_fields"])
                    if sensitive is None and sensitive_fields is None
                    else check_sensitive(bool(sensitive), sensitive_fields or ())
                )
                new = compose(
                    keyring,
                    tenant_id,
                    metadata_id,
                    expected + 1,
                    content,
                    metadata_type=current["metadata_type"],
                    schema_name=current["schema_name"],
                    schema_version=schema_version or current["schema_version"],
                    language=language if language is not None else current["language"],
                    sensitive_fields=hidden,
                )
                await repo.write(metadata_id, expected + 1, new, "update", actor)
                await self._record(
                    trail,
                    tenant_id=tenant_id,
                    action="metadata.update",
                    record_id=metadata_id,
                    version=expected + 1,
                    new=new,
                    actor=actor,
                )
                row = await repo.get(metadata_id)
        self.embedder.notice(tenant_id)
        assert row is not None  # noqa: S101 - written above, in this transaction
        return await self._record_of(tenant_id, row)

    async def rollback(
        self,
        tenant_id: str,
        metadata_id: str,
        to_version: int,
        *,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> MetadataRecord:
        """Write a new version equal to ``to_version`` (its content, type and schema); the
        record's current sensitive fields stay sealed."""
        self._check_id(tenant_id, metadata_id)
        target = version_number(to_version, "to_version")
        keyring, trail, db = (
            await self._keys(tenant_id),
            await self._trail(tenant_id),
            await self._db(),
        )
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                repo = MetadataRepository(conn)
                current = await self._locked(repo, metadata_id, expected_version)
                old = await repo.version(metadata_id, target)
                if old is None:
                    raise MetadataNotFound(f"metadata {metadata_id!r} has no version {target}")
                content = await open_content(keyring, tenant_id, metadata_id, old)
                version = current["version"] + 1
                new = compose(
                    keyring,
                    tenant_id,
                    metadata_id,
                    version,
                    content,
                    metadata_type=old["metadata_type"],
                    schema_name=old["schema_name"],
                    schema_version=old["schema_version"],
                    language=current["language"],
                    sensitive_fields=list(current["sensitive_fields"]),
                )
                await repo.write(metadata_id, version, new, "rollback", actor)
                await self._record(
                    trail,
                    tenant_id=tenant_id,
                    action="metadata.rollback",
                    record_id=metadata_id,
                    version=version,
                    new=new,
                    actor=actor,
                    rolled_back_to=target,
                )
                row = await repo.get(metadata_id)
        self.embedder.notice(tenant_id)
        assert row is not None  # noqa: S101 - written above, in this transaction
        return await self._record_of(tenant_id, row)

    async def delete_metadata(
        self,
        tenant_id: str,
        metadata_id: str,
        *,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> None:
        """Delete a record and its versions (optionally only if still at ``expected_version``)."""
        self._check_id(tenant_id, metadata_id)
        trail, db = await self._trail(tenant_id), await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                repo = MetadataRepository(conn)
                current = await self._locked(repo, metadata_id, expected_version)
                await repo.delete(metadata_id)
                await trail.record(
                    tenant_id,
                    "metadata.delete",
                    f"metadata:{metadata_id}",
                    actor=actor,
                    detail={"version": current["version"]},
                )

    async def versions(self, tenant_id: str, metadata_id: str) -> list[MetadataVersion]:
        """The record's history, oldest first (at most the latest 1,000 versions)."""
        self._check_id(tenant_id, metadata_id)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                rows = await MetadataRepository(conn).versions(metadata_id, _MAX_HISTORY)
        if not rows:
            raise MetadataNotFound(f"metadata {metadata_id!r} does not exist")
        keyring = await self._keys(tenant_id) if any(r["sealed"] for r in rows) else None
        return [await self._version_of(tenant_id, row, keyring) for row in rows]

    async def get_version(self, tenant_id: str, metadata_id: str, version: int) -> MetadataVersion:
        """The record as it was at ``version``."""
        self._check_id(tenant_id, metadata_id)
        number = version_number(version, "version")
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                row = await MetadataRepository(conn).version(metadata_id, number)
        if row is None:
            raise MetadataNotFound(f"metadata {metadata_id!r} has no version {number}")
        keyring = await self._keys(tenant_id) if row["sealed"] else None
        return await self._version_of(tenant_id, row, keyring)

    async def list_metadata(
        self,
        tenant_id: str,
        *,
        metadata_type: MetadataType | str | None = None,
        schema_name: str | None = None,
        fields: Mapping[str, str | int | float | bool] | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> MetadataPage:
        """Records newest first, filtered by type, schema and top-level field values."""
        validate_tenant_id(tenant_id)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
        kind = None if metadata_type is None else parse_enum(MetadataType, metadata_type).value
        after = None if cursor is None else decode_cursor(cursor)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                rows = await MetadataRepository(conn).page(
                    metadata_type=kind,
                    schema_name=schema_name,
                    fields=check_fields(fields),
                    after=after,
                    limit=limit + 1,
                )
        items = [await self._record_of(tenant_id, row) for row in rows[:limit]]
        more = len(rows) > limit
        return MetadataPage(items, encode_cursor(items[-1]) if more and items else None)

    # -- search -----------------------------------------------------------------------------------

    async def search_metadata(self, tenant_id: str, search: MetadataSearch) -> list[SearchHit]:
        """Records matching ``search``, best first (see :class:`MetadataSearch`)."""
        validate_tenant_id(tenant_id)
        check_search(search)
        kind = search.metadata_type
        filters = Filters(
            None if kind is None else parse_enum(MetadataType, kind).value,
            search.schema_name,
            check_fields(search.fields),
        )
        query = Query(search, filters)
        if search.semantic_search:
            encoder = await self.encoder()
            vector = await self._encode_query(tenant_id, encoder, search.query)
            query = Query(search, filters, vector, encoder)
        store, db = await self.vector_store(), await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                found = await run_search(MetadataRepository(conn), store, query)
        return [
            SearchHit(
                record=await self._record_of(tenant_id, row),
                score=score,
                similarity=found.similarity.get(row["id"]),
                text_rank=found.text_rank.get(row["id"]),
            )
            for row, score in found.hits
        ]

    async def _encode_query(self, tenant_id: str, encoder: Encoder, text: str) -> Any:
        """The query's vector, encoded off the event loop. The encoder is shared by every
        tenant, so a tenant may have at most ``max_encodings`` queries waiting for it at once:
        one more is refused (429), and a flood of one tenant's searches cannot queue the
        others' behind it."""
        waiting = self._encodings.get(tenant_id, 0)
        if waiting >= self.max_encodings:
            raise BulkheadFull(
                f"tenant {tenant_id!r} has {waiting} searches by meaning in progress; "
                "retry when one has finished",
                retry_after=0.05,
            )
        self._encodings[tenant_id] = waiting + 1
        try:
            return (await asyncio.to_thread(encoder.encode_queries, [text]))[0]
        finally:
            left = self._encodings[tenant_id] - 1
            if left:
                self._encodings[tenant_id] = left
            else:
                del self._encodings[tenant_id]

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _check_id(tenant_id: str, metadata_id: str) -> None:
        validate_tenant_id(tenant_id)
        if not isinstance(metadata_id, str) or tenant_of_id(metadata_id, ID_PREFIX) != tenant_id:
            shown = InvalidInput.excerpt(metadata_id, 120)
            raise MetadataNotFound(f"metadata {shown} does not exist")

    @staticmethod
    async def _locked(
        repo: MetadataRepository, metadata_id: str, expected: int | None
    ) -> Mapping[Any, Any]:
        row = await repo.get(metadata_id, lock=True)
        if row is None:
            raise MetadataNotFound(f"metadata {metadata_id!r} does not exist")
        if expected is not None and row["version"] != expected:
            raise VersionConflict(
                f"metadata {metadata_id!r} is at version {row['version']}, not {expected}: "
                "read it again and apply the change to that version"
            )
        return row

    @staticmethod
    async def _record(
        trail: ChangeLog,
        *,
        tenant_id: str,
        action: str,
        record_id: str,
        version: int,
        new: Any,
        actor: str | None,
        **extra: Any,
    ) -> None:
        detail = {
            "version": version,
            "metadata_type": new.metadata_type,
            "schema_name": new.schema_name,
            "schema_version": new.schema_version,
            "sealed": new.sealed is not None,
            **extra,
        }
        await trail.record(tenant_id, action, f"metadata:{record_id}", actor=actor, detail=detail)

    async def _record_of(self, tenant_id: str, row: Mapping[Any, Any]) -> MetadataRecord:
        keyring = await self._keys(tenant_id) if row["sealed"] is not None else None
        content = await open_content(keyring, tenant_id, row["id"], row)
        return MetadataRecord(
            id=row["id"],
            tenant_id=tenant_id,
            metadata_type=MetadataType(row["metadata_type"]),
            version=row["version"],
            content=content,
            schema_name=row["schema_name"],
            schema_version=row["schema_version"],
            language=row["language"],
            sensitive_fields=tuple(row["sensitive_fields"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            created_by=row["created_by"],
            updated_by=row["updated_by"],
            embedded=bool(row["embedded"]),
        )

    async def _version_of(
        self, tenant_id: str, row: Mapping[Any, Any], keyring: Keyring | None
    ) -> MetadataVersion:
        content = await open_content(keyring, tenant_id, row["record_id"], row)
        return MetadataVersion(
            record_id=row["record_id"],
            version=row["version"],
            change=row["change"],
            metadata_type=MetadataType(row["metadata_type"]),
            content=content,
            schema_name=row["schema_name"],
            schema_version=row["schema_version"],
            created_at=row["created_at"],
            created_by=row["created_by"],
        )


class MetadataManagerFactory:
    """The documents' factory."""

    @staticmethod
    def create_production_manager(database: Database | None = None) -> MetadataManager:
        """A manager on ``database`` (default: the process's), embedding in the background once
        :meth:`MetadataManager.initialize` ran."""
        return MetadataManager(database)

    @staticmethod
    def create_development_manager(database: Database | None = None) -> MetadataManager:
        return MetadataManager(database)

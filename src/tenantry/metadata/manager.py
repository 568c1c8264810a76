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
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import (
    BulkheadFull,
    ConfigError,
    InvalidInput,
    MetadataNotFound,
    SchemaViolation,
    StorageQuotaExceeded,
)
from tenantry.keys import Keyring
from tenantry.metadata.conformance import Conformance
from tenantry.metadata.embedding import Embedder
from tenantry.metadata.encoder import Encoder, default_encoder, parts
from tenantry.metadata.indexes import SearchIndexes
from tenantry.metadata.inputs import (
    MAX_LIMIT,
    check_fields,
    check_search,
    decode_cursor,
    encode_cursor,
    version_number,
)
from tenantry.metadata.models import EMBEDDING_PARTS
from tenantry.metadata.registry import SchemaRegistry
from tenantry.metadata.repository import MetadataRepository
from tenantry.metadata.schemas import (
    MetadataPage,
    MetadataRecord,
    MetadataSearch,
    MetadataType,
    MetadataVersion,
    SearchHit,
    UpgradeStep,
)
from tenantry.metadata.search import Filters, Query, VectorStore, run_search
from tenantry.metadata.storage import StorageLimit, StorageUsage
from tenantry.metadata.versions import check_sensitive, open_content
from tenantry.metadata.views import record_of, version_of
from tenantry.metadata.writes import Header, Writes
from tenantry.sessions.tokens import make_id, tenant_of_id
from tenantry.tracing import traced
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
        registry: SchemaRegistry | None = None,
        encoder: Encoder | None = None,
        embed_interval: float = 0.2,
        max_encodings: int = 4,
        indexes: SearchIndexes | None = None,
    ) -> None:
        self._database = database
        self._audit = audit
        self._keyring = keyring
        self._encoder = encoder
        #: The schema registry records are validated against and upgraded through.
        self.schemas = Conformance(registry or SchemaRegistry(database, audit=audit))
        self._store: VectorStore | None = None
        self._store_lock = asyncio.Lock()
        self._encodings: dict[str, int] = {}
        #: Searches by meaning one tenant may have waiting for the (shared) encoder at once.
        self.max_encodings = max_encodings
        self.embedder = Embedder(
            database, encoder=self.encoder, store=self.vector_store, interval=embed_interval
        )
        #: The bytes of metadata a tenant may store (the app: its tier's ``storage_bytes``);
        #: ``None``: no limit. Asked before each write's transaction (:mod:`.storage`).
        self.storage_limit: StorageLimit | None = None
        #: Writes refused by the storage limit, by tenant.
        self.storage_refused: dict[str, int] = {}
        #: Builds large tenants' own search indexes (with the process's default database, or
        #: when given one made with the database's runtime; else searches read tenants' rows).
        self.indexes = indexes or SearchIndexes(database)

    # -- resources --------------------------------------------------------------------------------

    async def encoder(self) -> Encoder:
        """The encoder; the default models are loaded on first use, off the event loop. Its
        rows must have the stored layout (``EMBEDDING_PARTS``): else :class:`ConfigError`."""
        if self._encoder is None:
            self._encoder = await asyncio.to_thread(default_encoder)
        layout = tuple((part.start, part.stop) for part in parts(self._encoder))
        if layout != EMBEDDING_PARTS:
            raise ConfigError(
                f"encoder {self._encoder.name!r} makes rows of parts {layout}; the stored "
                f"vectors have {EMBEDDING_PARTS} (an Ensemble of E5 and USE, as default_encoder)"
            )
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
        await self.indexes.start()

    async def close(self) -> None:
        await self.embedder.close()
        await self.indexes.close()

    def _changed(self, tenant_id: str) -> None:
        """A write committed: embed the tenant's due records, and see whether it is large."""
        self.embedder.notice(tenant_id)
        self.indexes.notice(tenant_id)

    async def embed_pending(self, tenant_id: str) -> int:
        """Embed every record of ``tenant_id`` that is not searchable by meaning yet, now."""
        return await self.embedder.embed_all(tenant_id)

    # -- records ----------------------------------------------------------------------------------

    @traced("metadata.create")
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
        """Store a new record (version 1); its id. A record naming a schema is validated
        against ``schema_version`` of it (default: the latest)."""
        validate_tenant_id(tenant_id)
        kind = parse_enum(MetadataType, metadata_type)
        hidden = check_sensitive(sensitive, sensitive_fields)
        header = Header(kind.value, None, None, language, hidden)
        if schema_name is not None:
            schema = await self.schemas.for_write(tenant_id, schema_name, schema_version, content)
            hidden = Conformance.sensitive(schema, hidden)
            header = Header(kind.value, schema_name, schema.version, language, hidden)
        elif schema_version is not None:
            raise InvalidInput("schema_version needs a schema_name")
        record_id = make_id(ID_PREFIX, tenant_id)
        async with self._writes(tenant_id, actor) as writes:
            await writes.put(record_id, 1, content, header, "create")
        self._changed(tenant_id)
        return record_id

    async def get_metadata(self, tenant_id: str, metadata_id: str) -> MetadataRecord:
        """The record at its current version (its content as its schema's latest version reads
        it)."""
        self._check_id(tenant_id, metadata_id)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                row = await MetadataRepository(conn).get(metadata_id)
        if row is None:
            raise MetadataNotFound(f"metadata {metadata_id!r} does not exist")
        return await self._record_of(tenant_id, row)

    @traced("metadata.update")
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
        that names a schema is validated against the version it names (or ``schema_version``,
        which may only move forward).
        """
        self._check_id(tenant_id, metadata_id)
        expected = version_number(expected_version, "expected_version")
        async with self._writes(tenant_id, actor) as writes:
            current = await writes.locked(metadata_id, expected)
            hidden = (
                list(current["sensitive_fields"])
                if sensitive is None and sensitive_fields is None
                else check_sensitive(bool(sensitive), sensitive_fields or ())
            )
            changes: dict[str, Any] = {"sensitive_fields": hidden}
            if language is not None:
                changes["language"] = language
            name, written = current["schema_name"], current["schema_version"]
            if name is not None:
                schema = await self.schemas.for_write(
                    tenant_id, name, schema_version or written, content, at_least=written
                )
                changes |= {
                    "schema_version": schema.version,
                    "sensitive_fields": Conformance.sensitive(schema, hidden),
                }
            elif schema_version is not None:
                raise InvalidInput("the record names no schema: schema_version does not apply")
            await writes.put(
                metadata_id, expected + 1, content, Header.of(current, **changes), "update"
            )
            row = await writes.repo.get(metadata_id)
        self._changed(tenant_id)
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
        async with self._writes(tenant_id, actor) as writes:
            current = await writes.locked(metadata_id, expected_version)
            old = await writes.repo.version(metadata_id, target)
            if old is None:
                raise MetadataNotFound(f"metadata {metadata_id!r} has no version {target}")
            content = await open_content(writes.keyring, tenant_id, metadata_id, old)
            header = Header.of(
                current,
                metadata_type=old["metadata_type"],
                schema_name=old["schema_name"],
                schema_version=old["schema_version"],
            )
            version = current["version"] + 1
            await writes.put(
                metadata_id, version, content, header, "rollback", rolled_back_to=target
            )
            row = await writes.repo.get(metadata_id)
        self._changed(tenant_id)
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
        async with self._writes(tenant_id, actor) as writes:
            current = await writes.locked(metadata_id, expected_version)
            await StorageUsage(writes.repo.conn).release(metadata_id)
            await writes.repo.delete(metadata_id)
            await writes.trail.record(
                tenant_id,
                "metadata.delete",
                f"metadata:{metadata_id}",
                actor=actor,
                detail={"version": current["version"]},
            )

    async def upgrade_records(
        self,
        tenant_id: str,
        schema_name: str,
        *,
        to_version: int | None = None,
        batch: int = 100,
        after: str | None = None,
        actor: str | None = None,
    ) -> UpgradeStep:
        """Write, as a new version (``change = "upgrade"``), the content of up to ``batch``
        records of ``schema_name`` written with an older version, as ``to_version`` (default:
        the latest) reads it, in id order after ``after``. A record whose upgraded content does
        not validate is left as it is, and named in the step. Call again with the step's
        ``last`` until ``more`` is False (``tenantry metadata upgrade`` does); stopped midway,
        it resumes where it was, since an upgraded record is no longer behind."""
        validate_tenant_id(tenant_id)
        if not isinstance(batch, int) or not 1 <= batch <= 1000:
            raise InvalidInput("batch must be between 1 and 1000")
        target = (
            await self.schemas.latest(tenant_id, schema_name)
            if to_version is None
            else await self.schemas.version(tenant_id, schema_name, to_version)
        )
        upgraded, failed = 0, []
        async with self._writes(tenant_id, actor) as writes:
            ids = await writes.repo.stale(schema_name, target.version, after, batch)
            for record_id in ids:
                row = await writes.locked(record_id, None)
                written = await open_content(writes.keyring, tenant_id, record_id, row)
                content, _ = await self.schemas.upgraded(
                    tenant_id, schema_name, row["schema_version"], written, to=target
                )
                try:
                    await self.schemas.registry.validate_content(
                        tenant_id, schema_name, target.version, content
                    )
                except SchemaViolation:
                    failed.append(record_id)
                    continue
                header = Header.of(row, schema_version=target.version)
                await writes.put(record_id, row["version"] + 1, content, header, "upgrade")
                upgraded += 1
        if upgraded:
            self._changed(tenant_id)
        last = ids[-1] if ids else after
        return UpgradeStep(upgraded, tuple(failed), last, len(ids) == batch)

    async def count_behind(
        self, tenant_id: str, schema_name: str, to_version: int | None = None
    ) -> int:
        """How many records of ``schema_name`` are written with a version before ``to_version``
        (default: the latest)."""
        validate_tenant_id(tenant_id)
        target = to_version or (await self.schemas.latest(tenant_id, schema_name)).version
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                return await MetadataRepository(conn).count_stale(schema_name, target)

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
        return [await version_of(tenant_id, row, keyring) for row in rows]

    async def get_version(self, tenant_id: str, metadata_id: str, version: int) -> MetadataVersion:
        """The record as it was written at ``version``."""
        self._check_id(tenant_id, metadata_id)
        number = version_number(version, "version")
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                row = await MetadataRepository(conn).version(metadata_id, number)
        if row is None:
            raise MetadataNotFound(f"metadata {metadata_id!r} has no version {number}")
        keyring = await self._keys(tenant_id) if row["sealed"] else None
        return await version_of(tenant_id, row, keyring)

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

    @traced("metadata.search")
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

    @asynccontextmanager
    async def _writes(self, tenant_id: str, actor: str | None) -> AsyncIterator[Writes]:
        """A tenant transaction for changes, its keys loaded and its audit trail ready (both
        before it opens, so that sealing and recording inside do no I/O)."""
        keyring, trail = await self._keys(tenant_id), await self._trail(tenant_id)
        limit = None if self.storage_limit is None else await self.storage_limit(tenant_id)
        db = await self._db()
        try:
            with tenant_scope(tenant_id):
                async with db.tenant_transaction() as conn:
                    yield Writes(MetadataRepository(conn), keyring, trail, tenant_id, actor, limit)
        except StorageQuotaExceeded:
            self.storage_refused[tenant_id] = self.storage_refused.get(tenant_id, 0) + 1
            raise

    async def storage_used(self, tenant_id: str) -> int:
        """The bytes of metadata ``tenant_id`` stores (the running total :mod:`.storage` keeps)."""
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                return await StorageUsage(conn).used()

    async def recount_storage(self, tenant_id: str) -> int:
        """Set ``tenant_id``'s running total to the exact sum of its stored versions (O(rows):
        for a total that may have drifted, as after a restore); that sum."""
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                return await StorageUsage(conn).recount()

    async def _record_of(self, tenant_id: str, row: Mapping[Any, Any]) -> MetadataRecord:
        keyring = await self._keys(tenant_id) if row["sealed"] is not None else None
        return await record_of(tenant_id, row, keyring, self.schemas)


class MetadataManagerFactory:
    """The documents' factory."""

    @staticmethod
    def create_production_manager(database: Database | None = None) -> MetadataManager:
        """A manager on ``database`` (default: the process's), embedding in the background once
        :meth:`MetadataManager.initialize` ran."""
        return MetadataManager(database)

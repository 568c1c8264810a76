"""Hybrid search on both kinds of PostgreSQL: pgvector's HNSW (embedded) and the exact scan of
``real[]`` vectors (the server, which has no pgvector)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import BulkheadFull, InvalidInput
from tenantry.metadata import MetadataManager, MetadataSearch
from tenantry.tenants import TenantRegistry

Backend = tuple[DatabaseRuntime, Database]

RECORDS = [
    (
        "business",
        "en",
        {
            "title": "Sync licensing contract",
            "summary": "licence to use the track Night Drive in a feature film soundtrack",
        },
    ),
    (
        "business",
        "en",
        {
            "title": "Royalty statement Q3",
            "summary": "quarterly royalty payments to the songwriters of the label",
        },
    ),
    (
        "schema",
        "en",
        {"table": "users", "summary": "user data schema: email, country, date of birth"},
    ),
    (
        "technical",
        "en",
        {
            "pipeline": "loudness normalisation",
            "summary": "normalises mastered stems to -14 LUFS before delivery",
        },
    ),
    (
        "business",
        "de",
        {
            "titel": "Tourplan Herbst",
            "beschreibung": "Konzertreise durch Deutschland und Österreich im Herbst",
        },
    ),
    (
        "technical",
        "en",
        {
            "pipeline": "DDEX delivery",
            "summary": "sends release metadata to streaming services as DDEX ERN messages",
        },
    ),
]


async def _tenant(db: Database) -> str:
    tenant = f"ms-{uuid.uuid4().hex[:12]}"
    await TenantRegistry(db).create(tenant, tenant)
    return tenant


async def _catalogue(manager: MetadataManager, tenant: str) -> list[str]:
    return [
        await manager.create_metadata(tenant, kind, content, language=language)
        for kind, language, content in RECORDS
    ]


async def test_text_at_once_meaning_after_embedding(backend_db: Backend) -> None:
    runtime, db = backend_db
    manager = MetadataManager(db)
    store = await manager.vector_store()
    assert store.pgvector is (runtime.embedded is not None)  # the server here has no pgvector
    tenant = await _tenant(db)
    ids = await _catalogue(manager, tenant)

    by_text = await manager.search_metadata(
        tenant, MetadataSearch("royalty", semantic_search=False)
    )
    assert [h.record.id for h in by_text] == [ids[1]]
    assert by_text[0].text_rank == 1
    assert by_text[0].similarity is None
    assert not by_text[0].record.embedded

    meaning = MetadataSearch(
        "Lizenzvertrag für Filmmusik", text_search=False, similarity_threshold=0.0
    )
    assert await manager.search_metadata(tenant, meaning) == []  # nothing embedded yet
    assert await manager.embed_pending(tenant) == len(RECORDS)
    assert await manager.embed_pending(tenant) == 0
    found = await manager.search_metadata(tenant, meaning)
    assert found[0].record.id == ids[0]  # a German query finds the English contract
    assert found[0].record.embedded
    assert found[0].similarity is not None
    assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)
    assert all(0.0 <= h.similarity <= 1.0 for h in found if h.similarity is not None)

    # hybrid: text and meaning fused; an impossible threshold leaves the text matches only
    hybrid = await manager.search_metadata(
        tenant, MetadataSearch("user data schema", similarity_threshold=0.0)
    )
    assert hybrid[0].record.id == ids[2]
    strict = await manager.search_metadata(
        tenant, MetadataSearch("schema", similarity_threshold=1.0)
    )
    assert [h.record.id for h in strict] == [ids[2]]
    assert strict[0].similarity is None

    # filters apply to both sides
    technical = await manager.search_metadata(
        tenant,
        MetadataSearch("music delivery", metadata_type="technical", similarity_threshold=0.0),
    )
    assert {h.record.id for h in technical} <= {ids[3], ids[5]}
    # the record's language stems its words; the query's, given, stems the query's
    plural = MetadataSearch("Konzertreisen", semantic_search=False)
    assert await manager.search_metadata(tenant, plural) == []
    german = await manager.search_metadata(tenant, replace(plural, language="de"))
    assert [h.record.id for h in german] == [ids[4]]


async def test_a_changed_record_is_searched_by_its_new_content(backend_db: Backend) -> None:
    _, db = backend_db
    manager = MetadataManager(db)
    tenant = await _tenant(db)
    record_id = await manager.create_metadata(tenant, "business", {"title": "Blue Hour album"})
    await manager.embed_pending(tenant)
    await manager.update_metadata(
        tenant, record_id, {"title": "Red Dawn single"}, expected_version=1
    )
    vector_only = MetadataSearch("Blue Hour", text_search=False, similarity_threshold=0.0)
    assert await manager.search_metadata(tenant, vector_only) == []  # the old vector is stale
    assert (
        await manager.search_metadata(tenant, MetadataSearch("blue", semantic_search=False)) == []
    )
    assert (
        len(await manager.search_metadata(tenant, MetadataSearch("dawn", semantic_search=False)))
        == 1
    )
    await manager.embed_pending(tenant)
    again = await manager.search_metadata(
        tenant, MetadataSearch("Red Dawn", text_search=False, similarity_threshold=0.0)
    )
    assert [h.record.id for h in again] == [record_id]


async def test_a_tenant_searches_its_own_records_only(backend_db: Backend) -> None:
    _, db = backend_db
    manager = MetadataManager(db)
    a, b = await _tenant(db), await _tenant(db)
    await _catalogue(manager, a)
    await manager.embed_pending(a)
    for search in (
        MetadataSearch("royalty", similarity_threshold=0.0),
        MetadataSearch("royalty", semantic_search=False),
        MetadataSearch("royalty", text_search=False, similarity_threshold=0.0),
    ):
        assert await manager.search_metadata(b, search) == []


@pytest.mark.parametrize(
    ("search", "match"),
    [
        (MetadataSearch(""), "query"),
        (MetadataSearch("x" * 1001), "query"),
        (MetadataSearch("x", limit=0), "limit"),
        (MetadataSearch("x", limit=101), "limit"),
        (MetadataSearch("x", similarity_threshold=1.5), "similarity_threshold"),
        (MetadataSearch("x", semantic_search=False, text_search=False), "text, by meaning"),
        (MetadataSearch("x", language="!!"), "language"),
        (MetadataSearch("x", fields={"a": [1]}), "field"),  # type: ignore[dict-item]
        (MetadataSearch("x", fields={"a": float("nan")}), "finite"),
        (MetadataSearch("x", metadata_type="poem"), "MetadataType"),  # type: ignore[arg-type]
    ],
)
async def test_bad_searches_are_refused(db: Database, search: MetadataSearch, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        await MetadataManager(db).search_metadata("ms-bad-input", search)


class _Gated:
    """The default encoder, whose query encodings wait for a gate (to hold searches in flight)."""

    def __init__(self) -> None:
        from tenantry.metadata.encoder import default_encoder, parts  # noqa: PLC0415

        self.inner = default_encoder()
        self.gate, self.entered = threading.Event(), threading.Event()
        self.name, self.dimension = self.inner.name, self.inner.dimension
        self.parts = parts(self.inner)

    def encode_queries(self, texts: Sequence[str]) -> Any:
        self.entered.set()
        self.gate.wait(10)
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts: Sequence[str]) -> Any:
        return self.inner.encode_passages(texts)

    def calibrate(self, cosines: Any) -> Any:
        return self.inner.calibrate(cosines)


async def test_one_tenant_cannot_queue_the_encoder_for_the_others(db: Database) -> None:
    gated = _Gated()
    manager = MetadataManager(db, encoder=gated, max_encodings=1)  # type: ignore[arg-type]
    a, b = await _tenant(db), await _tenant(db)
    search = MetadataSearch("royalty statement", similarity_threshold=0.0)
    first = asyncio.create_task(manager.search_metadata(a, search))
    assert await asyncio.to_thread(gated.entered.wait, 10)
    with pytest.raises(BulkheadFull) as refused:
        await manager.search_metadata(a, search)
    assert refused.value.retry_after is not None
    other = asyncio.create_task(manager.search_metadata(b, search))  # not refused
    await asyncio.sleep(0.05)
    assert not other.done()
    gated.gate.set()
    assert await first == []
    assert await other == []
    assert manager._encodings == {}
    assert await manager.search_metadata(a, search) == []  # the slot is free again


async def test_the_background_embedder_embeds_noticed_and_swept_records(db: Database) -> None:
    swept, noticed = await _tenant(db), await _tenant(db)
    # written by a manager whose embedder does not run: only the sweep finds it
    elsewhere = await MetadataManager(db).create_metadata(swept, "business", {"title": "a"})
    manager = MetadataManager(db, embed_interval=0.05)
    await manager.initialize()  # its first round sweeps every active tenant
    try:
        here = await manager.create_metadata(noticed, "business", {"title": "b"})
        for _ in range(400):
            records = [
                await manager.get_metadata(swept, elsewhere),
                await manager.get_metadata(noticed, here),
            ]
            if all(r.embedded for r in records):
                break
            await asyncio.sleep(0.05)
        assert [r.embedded for r in records] == [True, True]
    finally:
        await manager.close()
    assert not manager.embedder.running

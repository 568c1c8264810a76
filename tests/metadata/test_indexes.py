"""Per-tenant search indexes, on both kinds of PostgreSQL: a large tenant's search reads its own
partial indexes, a small tenant's reads no index that holds another tenant's rows, failed builds
are rebuilt and deleted tenants' indexes dropped."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenantry.api import create_app
from tenantry.config import Settings
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.db.pool import driver_connection
from tenantry.db.repository import DriverQuery, TenantRepository
from tenantry.db.runtime import DatabaseRuntime
from tenantry.metadata import MetadataManager, MetadataSearch, SearchIndexes
from tenantry.metadata.indexes import index_names
from tenantry.metadata.models import EMBEDDING_PARTS
from tenantry.metadata.search import Filters, VectorStore
from tenantry.tenants import TenantRegistry
from tests.conftest import TOKEN

Backend = tuple[DatabaseRuntime, Database]
MIN = 12


async def _tenant(db: Database, manager: MetadataManager, records: int) -> str:
    tenant = f"ix-{uuid.uuid4().hex[:12]}"
    await TenantRegistry(db).create(tenant, tenant)
    for n in range(records):
        await manager.create_metadata(
            tenant, "business", {"title": f"Night Drive remix {n}", "catalogue": f"NDR-{n}"}
        )
    return tenant


def _indexes_in(plan: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Index Name" in plan:
            found.add(plan["Index Name"])
        for value in plan.values():
            found |= _indexes_in(value)
    elif isinstance(plan, list):
        for item in plan:
            found |= _indexes_in(item)
    return found


async def _admin(runtime: DatabaseRuntime, sql: str) -> None:
    engine = create_async_engine(
        runtime.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def _analyze(runtime: DatabaseRuntime) -> None:
    await _admin(runtime, "ANALYZE tenantry.metadata_records")


async def _plans(
    runtime: DatabaseRuntime, db: Database, store: VectorStore, tenant: str
) -> tuple[set[str], set[str]]:
    """The indexes the search's text and vector statements read for ``tenant``, as planned in
    a search's transaction, with sequential scans priced out: a test's few rows are cheaper to
    read without an index, and the question is which indexes the planner *may* use (it would
    take any that served)."""

    async def explain(repo: TenantRepository, query: DriverQuery, params: dict[str, Any]) -> Any:
        driver = driver_connection(repo.conn)
        rows = await driver.fetch(
            "EXPLAIN (FORMAT JSON) " + query.sql, *(params[n] for n in query.names)
        )
        plan = rows[0][0]
        return _indexes_in(json.loads(plan) if isinstance(plan, str) else plan)

    await _analyze(runtime)
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            repo = TenantRepository(conn)
            await store.plan(repo, 30)
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            await conn.execute(text("SET LOCAL cpu_operator_cost = 10"))
            by_text = await explain(
                repo,
                store.text_statement(Filters()),
                {"tenant": tenant, "query": "NDR-7", "config": "english", "limit": 30},
            )
            by_meaning: set[str] = set()
            for part, (start, stop) in enumerate(EMBEDDING_PARTS):
                width = stop - start
                vector = store.literal(np.full(width, width**-0.5, dtype=np.float32))
                by_meaning |= await explain(
                    repo,
                    store.vector_statement(Filters(), part),
                    {"tenant": tenant, "v": vector, "limit": 30},
                )
    return by_text, by_meaning


async def test_a_large_tenant_reads_its_own_indexes_a_small_one_none(backend_db: Backend) -> None:
    runtime, db = backend_db
    indexes = SearchIndexes(db, runtime=runtime, min_records=MIN)
    manager = MetadataManager(db, indexes=indexes)
    store = await manager.vector_store()
    large = await _tenant(db, manager, MIN)
    small = await _tenant(db, manager, MIN - 1)
    names = index_names(large)
    wanted = set(names.values()) if store.pgvector else {names["text"]}
    assert len(names) == 1 + len(EMBEDDING_PARTS)  # full text, and a vector index per part

    assert (await indexes.visit(small)).built == ()  # below the threshold: nothing to build
    step = await indexes.visit(large)
    assert step.records == MIN
    assert set(step.built) == wanted
    existing = await indexes.existing()
    assert all(existing[name] for name in wanted)
    assert (await indexes.visit(large)).built == ()  # built once

    by_text, by_meaning = await _plans(runtime, db, store, large)
    assert names["text"] in by_text
    if store.pgvector:
        assert {names["vector0"], names["vector1"]} <= by_meaning
    for plan in await _plans(runtime, db, store, small):  # the small tenant reads no tenant's index
        assert not any(name.startswith("ix_md_") for name in plan), plan

    # and the large tenant's search finds its records through them, by text and by meaning
    await manager.embed_pending(large)
    hits = await manager.search_metadata(large, MetadataSearch("NDR-3", semantic_search=False))
    assert [h.record.content["catalogue"] for h in hits] == ["NDR-3"]
    near = await manager.search_metadata(
        large, MetadataSearch("Night Drive remix 5", text_search=False, similarity_threshold=0)
    )
    assert len(near) == 10
    assert await manager.search_metadata(small, MetadataSearch("NDR-3", semantic_search=False))


async def test_full_text_is_leakproof_where_the_bootstrap_was_a_superuser(
    backend_db: Backend,
) -> None:
    _, db = backend_db
    async with db.transaction() as conn:
        leakproof = await conn.scalar(
            text("SELECT proleakproof FROM pg_proc WHERE oid = 'ts_match_vq'::regproc")
        )
    assert leakproof is True  # both test servers are bootstrapped by a superuser


async def test_a_failed_build_is_rebuilt_and_deleted_tenants_lose_theirs(
    backend_db: Backend,
) -> None:
    runtime, db = backend_db
    indexes = SearchIndexes(db, runtime=runtime, min_records=MIN)
    manager = MetadataManager(db, indexes=indexes)
    tenant = await _tenant(db, manager, MIN)
    name = index_names(tenant)["text"]
    # A concurrent build that failed (a unique index over duplicates) leaves an invalid index
    # under the name the keeper uses.
    with pytest.raises(Exception, match="could not create unique index"):
        await _admin(
            runtime,
            f'CREATE UNIQUE INDEX CONCURRENTLY "{name}" ON tenantry.metadata_records '
            f"(metadata_type) WHERE tenant_id = '{tenant}'",
        )
    assert (await indexes.existing())[name] is False
    assert name in await indexes.ensure(tenant)
    assert (await indexes.existing())[name] is True

    await TenantRegistry(db).update_status(tenant, "deleted")
    dropped = await indexes.prune()
    assert set(index_names(tenant).values()) >= set(dropped) >= {name}
    assert not set(index_names(tenant).values()) & set(await indexes.existing())


async def test_without_the_admin_url_nothing_is_built(backend_db: Backend) -> None:
    _, db = backend_db
    indexes = SearchIndexes(db, min_records=MIN)
    manager = MetadataManager(db, indexes=indexes)
    tenant = await _tenant(db, manager, MIN)
    assert not indexes.builds
    step = await indexes.visit(tenant)
    assert (step.records, step.built) == (MIN, ())
    assert not set(index_names(tenant).values()) & set(await indexes.existing())


async def test_the_service_builds_a_growing_tenants_indexes(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state.tenantry
        indexes = state.metadata.indexes
        assert indexes.builds  # the service gives it the admin URL it migrates with
        assert indexes.running
        await indexes.close()  # the rounds are driven here, not by the clock
        indexes.min_records = MIN
        tenant = f"ix-{uuid.uuid4().hex[:12]}"
        await state.tenants.create(tenant, "Service")
        headers = {**TOKEN, "X-Tenant-ID": tenant}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for n in range(MIN):
                created = await client.post(
                    "/metadata/create",
                    json={"metadata_type": "business", "content": {"title": f"Track {n}"}},
                    headers=headers,
                )
                assert created.status_code == 201, created.text
        assert tenant in indexes.noticed  # written through the service's manager
        await indexes.run_once()
        assert index_names(tenant)["text"] in await indexes.existing()

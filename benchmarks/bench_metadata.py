"""Metadata search: ``search_metadata`` on a big tenant among ten, against bare vector queries,
and the recall@10 of each tenant's HNSW indexes under row-level security against exact search.

The data (``benchmarks/metadata_data.py``): a big tenant (100,000 records on the embedded
PostgreSQL; 10,000 on the server, whose exact scan is linear; 2,000 with ``--quick``) and nine
others (2,000 / 1,000 / 200 each) in the same table; tenants of 1,000 records or more have
their own full-text and HNSW indexes (``tenantry.metadata.indexes``), as the service builds
them. Every row holds two vectors side by side (E5, then USE: ``EMBEDDING_PARTS``). The queries
are the 102 labelled queries of ``tests/metadata/catalogue`` (English, German, French, Spanish,
Swedish, Czech, Greek), cycled.

- ``search_metadata`` rows: the production path (tenant transaction, row-level security, the
  query encoded by both encoders off the event loop, the text candidates and each encoder's
  vector candidates, RRF, the records read and decoded): hybrid (the default), text only, vector
  only. Their peer: the bare queries as the admin (superuser: no RLS) on raw asyncpg: the same
  query encoded the same way, then per encoder ``SELECT id FROM tenantry.metadata_records WHERE
  tenant_id = $2 ORDER BY <its part> <=> $1 LIMIT 10`` (the big tenant's HNSW indexes, default
  ``ef_search``; on the server, without pgvector: the exact scans ``ORDER BY sum(a * b) DESC``
  over the big tenant's rows).
- ``..., query vector given`` rows: the same without the encoding on either side (the manager's
  encoder looks the query's precomputed vectors up).
- recall@10 rows, per encoder: the top 10 of search's statement for that encoder's part (in a
  search's transaction: RLS, its ``ef_search``, the tenant's own index) against the exact top 10
  of the same tenant's rows (every cosine computed with numpy from the vectors as loaded), mean
  over 50 queries, for the big tenant and for a small one (2,000 records, its own indexes; 200
  with ``--quick``, read exactly). On the server both sides are exact: 1.0 but for ties.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import asyncpg
import numpy as np
from numpy.typing import NDArray

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Metric, Plan, Row, run_cases, run_metrics
from benchmarks.metadata_data import Corpus, admin_dsn, load_tenants
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.db.repository import TenantRepository
from tenantry.metadata import MetadataManager, MetadataSearch
from tenantry.metadata.encoder import Encoder, Scores, Vectors, default_encoder, parts
from tenantry.metadata.models import EMBEDDING_PARTS
from tenantry.metadata.search import Filters, part_expression
from tests.metadata.catalogue import load_queries

__all__ = ["BENCHMARK", "PrecomputedQueries"]

HYBRID = "search_metadata hybrid (default), query encoded, RLS, big tenant"
TEXT = "search_metadata text only (semantic_search=False), RLS, big tenant"
VECTOR = "search_metadata vector only (text_search=False), query encoded, RLS, big tenant"
BARE = "bare vector queries (E5, USE) of the tenant, admin, raw asyncpg, no RLS, query encoded"
HYBRID_GIVEN = "search_metadata hybrid, query vector given, RLS, big tenant"
VECTOR_GIVEN = "search_metadata vector only, query vector given, RLS, big tenant"
BARE_GIVEN = "bare vector queries (E5, USE) of the tenant, admin, no RLS, query vectors given"
#: (row, tenant, part of the vectors): the index's recall per encoder, big and small tenant
RECALLS = [
    (
        f"recall@10 of search's {encoder} statement (RLS) vs exact, {size} tenant",
        (lambda c: c.tenants[0]) if size == "big" else (lambda c: c.tenants[1]),
        part,
    )
    for part, encoder in enumerate(("E5", "USE"))
    for size in ("big", "small")
]
OPERATIONS = (
    HYBRID,
    TEXT,
    VECTOR,
    BARE,
    HYBRID_GIVEN,
    VECTOR_GIVEN,
    BARE_GIVEN,
    *(name for name, _, _ in RECALLS),
)
RECALL_QUERIES = 50
OTHER_TENANTS = 9


def sizes(mode: str, quick: bool) -> tuple[int, int, int]:
    """(records of the big tenant, of each other tenant, distinct embedded texts)."""
    if quick:
        return 2_000, 200, 32
    if mode == "server":
        return 10_000, 1_000, 1_000
    return 100_000, 2_000, 1_000


class PrecomputedQueries:
    """An :class:`Encoder` that answers queries with vectors computed beforehand (the rows
    without encoding); passages and calibration are the wrapped encoder's."""

    def __init__(self, encoder: Encoder, vectors: dict[str, NDArray[np.float32]]) -> None:
        self._encoder, self._vectors = encoder, vectors
        self.name, self.dimension = encoder.name, encoder.dimension
        self.parts = parts(encoder)

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return np.stack([self._vectors[t] for t in texts])

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        return self._encoder.encode_passages(texts)

    def calibrate(self, cosines: NDArray[np.floating[Any]]) -> Scores:
        return self._encoder.calibrate(cosines)


def _literal(vector: NDArray[np.float32], pgvector: bool) -> str:
    body = ",".join(f"{x:.7g}" for x in vector.tolist())  # as VectorStore.literal
    return f"[{body}]" if pgvector else f"{{{body}}}"


def bare_sql(pgvector: bool, part: int) -> str:
    """The bare query of one part of the vectors: the tenant's rows, the same expression the
    tenant's index is built on (so it serves), as the admin (no RLS)."""
    column = part_expression(part, pgvector)
    if pgvector:
        width = EMBEDDING_PARTS[part][1] - EMBEDDING_PARTS[part][0]
        return (
            "SELECT id FROM tenantry.metadata_records WHERE tenant_id = $2 "
            f"ORDER BY {column} <=> $1::text::vector({width}) LIMIT 10"
        )
    return (
        "SELECT id FROM tenantry.metadata_records WHERE tenant_id = $2 ORDER BY (SELECT sum(a * b) "
        f"FROM unnest({column}, $1::text::real[]) AS t(a, b)) DESC LIMIT 10"
    )


async def recall(
    manager: MetadataManager,
    corpus: Corpus,
    tenant: str,
    part: int,
    queries: Sequence[NDArray[np.float32]],
) -> float:
    """Mean share of the exact top 10 of the ``part`` that search's statement for that part
    returns (in a search's transaction: its plan settings, row-level security)."""
    store, shares = await manager.vector_store(), []
    start, stop = EMBEDDING_PARTS[part]
    for vector in queries:
        with tenant_scope(tenant):
            async with manager_db(manager).tenant_transaction() as conn:
                repo = TenantRepository(conn)
                await store.plan(repo, 30)
                near = await store.vector_candidates(repo, vector[start:stop], Filters(), 30, part)
        exact = corpus.exact(tenant, vector[start:stop], part)
        shares.append(len(set(near.ids[:10]).intersection(exact)) / len(exact))
    return float(np.mean(shares))


def manager_db(manager: MetadataManager) -> Database:
    database = manager._database
    assert database is not None
    return database


async def run(env: Environment, plan: Plan) -> list[Row]:
    quick = plan.iterations < 1000
    big, other, bases = sizes(env.mode, quick)
    encoder = default_encoder()
    manager = MetadataManager(env.db, encoder=encoder)
    store = await manager.vector_store()
    pgvector = store.pgvector
    corpus = await load_tenants(
        env, encoder, [big] + [other] * OTHER_TENANTS, bases, pgvector=pgvector
    )
    print(
        f"metadata: {big:,} + {OTHER_TENANTS} x {other:,} records ({bases} embedded texts); "
        + ", ".join(f"{k} {v:.1f} s" for k, v in corpus.seconds.items()),
        flush=True,
    )
    tenant = corpus.tenants[0]
    texts = [q.text for q in load_queries()]
    vectors = dict(zip(texts, encoder.encode_queries(texts), strict=True))
    given = MetadataManager(env.db, encoder=PrecomputedQueries(encoder, vectors))
    conn = await asyncpg.connect(admin_dsn(env))
    try:
        statements = [bare_sql(pgvector, part) for part in range(len(EMBEDDING_PARTS))]

        async def bare(vector: NDArray[np.float32]) -> object:
            """Each part's bare query, as search runs one statement per part."""
            found = []
            for sql, (start, stop) in zip(statements, EMBEDDING_PARTS, strict=True):
                found.append(await conn.fetch(sql, _literal(vector[start:stop], pgvector), tenant))
            return found

        await bare(vectors[texts[0]])

        def cycle_search(who: MetadataManager, **options: Any) -> Any:
            queries = itertools.cycle(texts)

            async def call() -> object:
                return await who.search_metadata(tenant, MetadataSearch(next(queries), **options))

            return call

        def cycle_bare(encode: bool) -> Any:
            queries = itertools.cycle(texts)

            async def call() -> object:
                query = next(queries)
                if encode:
                    vector = (await asyncio.to_thread(encoder.encode_queries, [query]))[0]
                else:
                    vector = vectors[query]
                return await bare(vector)

            return call

        vector_only = {"text_search": False, "similarity_threshold": 0.0}
        cases = [
            Case(HYBRID, cycle_search(manager), peer=BARE),
            Case(TEXT, cycle_search(manager, semantic_search=False), peer=BARE),
            Case(VECTOR, cycle_search(manager, **vector_only), peer=BARE),
            Case(BARE, cycle_bare(True)),
            Case(HYBRID_GIVEN, cycle_search(given), peer=BARE_GIVEN),
            Case(VECTOR_GIVEN, cycle_search(given, **vector_only), peer=BARE_GIVEN),
            Case(BARE_GIVEN, cycle_bare(False)),
        ]
        # a full-text search of the big tenant takes ~1 s: 10 calls of it at least, not 30
        capped = replace(
            plan.capped(iterations=300, warmup=10, memory_iterations=5),
            min_iterations=min(plan.min_iterations, 10),
        )
        rows = await run_cases(cases, capped, module="metadata")
        recall_queries = [vectors[t] for t in texts[:RECALL_QUERIES]]
        values = {}
        for name, who, part in RECALLS:
            if plan.wants(name):
                values[name] = await recall(manager, corpus, who(corpus), part, recall_queries)
        metrics = [
            Metric(name, lambda v=value: v, "recall@10", count=len(recall_queries))
            for name, value in values.items()
        ]
        rows += run_metrics(metrics, plan, module="metadata")
    finally:
        await conn.close()
        await manager.close()
        await given.close()
    return rows


BENCHMARK = Benchmark(name="metadata", operations=OPERATIONS, run=run)

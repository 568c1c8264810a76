"""Metadata search: ``search_metadata`` on a big tenant among ten, against bare vector queries,
and the recall@10 of pgvector's HNSW index under row-level security against an exact search.

The data (``benchmarks/metadata_data.py``): a big tenant (100,000 records on the embedded
PostgreSQL; 10,000 on the server, whose exact scan is linear; 2,000 with ``--quick``) and nine
others (2,000 / 1,000 / 200 each) in the same table; tenants of 1,000 records or more have
their own full-text and HNSW indexes (``tenantry.metadata.indexes``), as the service builds
them. The queries are the 90 labelled queries of ``tests/metadata/catalogue`` (English,
German, French, Spanish, Swedish, Czech, Greek), cycled.

- ``search_metadata`` rows: the production path (tenant transaction, row-level security, the
  query encoded off the event loop, the text and vector candidates, RRF, the records read and
  decoded): hybrid (the default), text only, vector only. Their peer: the bare query as the admin
  (superuser: no RLS) on raw asyncpg: the same query encoded the same way, then ``SELECT id FROM
  tenantry.metadata_records WHERE tenant_id = $2 ORDER BY embedding <=> $1 LIMIT 10`` (the big
  tenant's HNSW index; on the server, without pgvector: the exact scan ``ORDER BY sum(a * b)
  DESC`` over the big tenant's rows).
- ``..., query vector given`` rows: the same without the encoding on either side (the manager's
  encoder looks the query's precomputed vector up).
- recall@10 rows: ``search_metadata(..., text_search=False, similarity_threshold=0)`` (RLS, the
  tenant's own index) against the exact top 10 of the same tenant's rows (every cosine computed
  with numpy from the vectors as loaded), mean over 50 queries, for the big tenant and for a
  small one (2,000 records, its own index; 200 with ``--quick``, read exactly). On the server
  both sides are exact: 1.0 but for ties.
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
from tenantry.metadata import MetadataManager, MetadataSearch
from tenantry.metadata.encoder import Encoder, Scores, Vectors, default_encoder
from tests.metadata.catalogue import load_queries

__all__ = ["BENCHMARK", "PrecomputedQueries"]

HYBRID = "search_metadata hybrid (default), query encoded, RLS, big tenant"
TEXT = "search_metadata text only (semantic_search=False), RLS, big tenant"
VECTOR = "search_metadata vector only (text_search=False), query encoded, RLS, big tenant"
BARE = "bare vector query of the tenant, admin, raw asyncpg, no RLS, query encoded"
HYBRID_GIVEN = "search_metadata hybrid, query vector given, RLS, big tenant"
VECTOR_GIVEN = "search_metadata vector only, query vector given, RLS, big tenant"
BARE_GIVEN = "bare vector query of the tenant, admin, raw asyncpg, no RLS, query vector given"
RECALL_BIG = "recall@10 of search_metadata vector only (own index, RLS) vs exact, big tenant"
RECALL_SMALL = "recall@10 of search_metadata vector only (RLS) vs exact, small tenant"
OPERATIONS = (
    HYBRID,
    TEXT,
    VECTOR,
    BARE,
    HYBRID_GIVEN,
    VECTOR_GIVEN,
    BARE_GIVEN,
    RECALL_BIG,
    RECALL_SMALL,
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

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return np.stack([self._vectors[t] for t in texts])

    def encode_passages(self, texts: Sequence[str]) -> Vectors:
        return self._encoder.encode_passages(texts)

    def calibrate(self, cosines: NDArray[np.floating[Any]]) -> Scores:
        return self._encoder.calibrate(cosines)


def _literal(vector: NDArray[np.float32], pgvector: bool) -> str:
    body = ",".join(f"{x:.7g}" for x in vector.tolist())  # as VectorStore.literal
    return f"[{body}]" if pgvector else f"{{{body}}}"


def bare_sql(pgvector: bool) -> str:
    if pgvector:
        return (
            "SELECT id FROM tenantry.metadata_records WHERE tenant_id = $2 "
            "ORDER BY embedding <=> $1::text::vector LIMIT 10"
        )
    return (
        "SELECT id FROM tenantry.metadata_records WHERE tenant_id = $2 ORDER BY (SELECT sum(a * b) "
        "FROM unnest(embedding, $1::text::real[]) AS t(a, b)) DESC LIMIT 10"
    )


async def recall(
    manager: MetadataManager,
    corpus: Corpus,
    tenant: str,
    queries: Sequence[tuple[str, NDArray[np.float32]]],
) -> float:
    """Mean share of the exact top 10 that ``search_metadata`` (vector only) returns."""
    shares = []
    for query, vector in queries:
        search = MetadataSearch(query, text_search=False, similarity_threshold=0.0)
        found = {hit.record.id for hit in await manager.search_metadata(tenant, search)}
        exact = corpus.exact(tenant, vector)
        shares.append(len(found.intersection(exact)) / len(exact))
    return float(np.mean(shares))


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
    tenant, small = corpus.tenants[0], corpus.tenants[1]
    texts = [q.text for q in load_queries()]
    vectors = dict(zip(texts, encoder.encode_queries(texts), strict=True))
    given = MetadataManager(env.db, encoder=PrecomputedQueries(encoder, vectors))
    conn = await asyncpg.connect(admin_dsn(env))
    try:
        sql = bare_sql(pgvector)
        extra = (tenant,)
        await conn.fetch(sql, _literal(vectors[texts[0]], pgvector), *extra)

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
                return await conn.fetch(sql, _literal(vector, pgvector), *extra)

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
        recall_queries = [(t, vectors[t]) for t in texts[:RECALL_QUERIES]]
        values = {}
        for name, who in ((RECALL_BIG, tenant), (RECALL_SMALL, small)):
            if plan.wants(name):
                values[name] = await recall(given, corpus, who, recall_queries)
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

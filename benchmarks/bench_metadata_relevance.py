"""Metadata search relevance on the labelled catalogue (``tests/metadata/catalogue``).

The 306 records are created in a tenant with ``create_metadata`` and embedded by the embedder
(``embed_pending``); each of the 102 queries is searched with ``search_metadata`` in three ways
(``tests/metadata/search_evaluation.MODES``): text only (``semantic_search=False``), vector only
(``text_search=False, similarity_threshold=0``) and hybrid (the defaults: RRF of both, calibrated
threshold 0.01), without a query language (``MetadataSearch.language``), as a caller that does
not know it would. The value column: mean nDCG@10 and recall@10 (binary relevance) overall and
per query language; the hybrid rows' peer is the vector-only row of the same figure (their ratio
says whether hybrid beats it). ``cross-language queries found``: the share of the queries none
of whose relevant records is in the query's language that find at least one of them in their
top 10. ``hybrid, query language given``: nDCG@10 with ``language`` set to the query's.
``--quick`` evaluates the first 8 queries on their relevant records and as many others.
"""

from __future__ import annotations

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Metric, Plan, Row, run_metrics
from tenantry.metadata import MetadataManager
from tenantry.metadata.encoder import default_encoder
from tenantry.tenants import TenantRegistry
from tests.metadata.catalogue import load_queries, load_records
from tests.metadata.search_evaluation import (
    MODES,
    cross_language,
    evaluate_modes,
    evaluate_search,
    load_catalogue,
    subset,
)

__all__ = ["BENCHMARK"]

TENANT = "bench-md-relevance"
LANGUAGES = ("all", "en", "de", "fr", "es", "sv", "cs", "el")
QUICK_QUERIES = 8


def name(mode: str, figure: str, language: str) -> str:
    return f"relevance {mode} {figure}, {language} queries"


CROSS = "relevance {} cross-language queries found (>= 1 relevant in top 10)"
WITH_LANGUAGE = "relevance hybrid, query language given, nDCG@10, all queries"
OPERATIONS = (
    *(name(m, f, lang) for m in MODES for f in ("nDCG@10", "recall@10") for lang in LANGUAGES),
    *(CROSS.format(m) for m in MODES),
    WITH_LANGUAGE,
)


async def run(env: Environment, plan: Plan) -> list[Row]:
    await TenantRegistry(env.db).create(TENANT, TENANT)
    manager = MetadataManager(env.db, encoder=default_encoder())
    records, queries = (
        subset(QUICK_QUERIES) if plan.iterations < 1000 else (load_records(), load_queries())
    )
    try:
        keys = await load_catalogue(manager, env.db, TENANT, records)
        results = await evaluate_modes(manager, TENANT, keys, queries=queries)
        given = None
        if plan.wants(WITH_LANGUAGE):
            given = await evaluate_search(
                manager, TENANT, keys, MODES["hybrid"], with_language=True, queries=queries
            )
    finally:
        await manager.close()
    metrics: list[Metric] = []
    crossing = [q for q in queries if cross_language(q)]
    for mode, result in results.items():
        peer = mode == "hybrid"
        for figure, values in (("nDCG@10", result.ndcg), ("recall@10", result.recall)):
            for language in LANGUAGES:
                if language in values:
                    metrics.append(
                        Metric(
                            name(mode, figure, language),
                            lambda v=values[language]: v,
                            figure,
                            name("vector-only", figure, language) if peer else None,
                            result.queries[language],
                        )
                    )
        found = sum(bool(q.relevant.intersection(result.found[q.text])) for q in crossing)
        share = found / max(1, len(crossing))
        metrics.append(
            Metric(
                CROSS.format(mode),
                lambda v=share: v,
                "share",
                CROSS.format("vector-only") if peer else None,
                len(crossing),
            )
        )
    if given is not None:
        metrics.append(
            Metric(
                WITH_LANGUAGE,
                lambda v=given.ndcg["all"]: v,
                "nDCG@10",
                name("hybrid", "nDCG@10", "all"),
                given.queries["all"],
            )
        )
    return run_metrics(metrics, plan, module="metadata_relevance")


BENCHMARK = Benchmark(name="metadata_relevance", operations=OPERATIONS, run=run)

"""Relevance of ``search_metadata`` on the labelled catalogue, on the embedded PostgreSQL (HNSW).

The whole catalogue (306 records, 102 queries) is created, embedded and searched in the three
ways of ``tests/metadata/search_evaluation.MODES``: about 30 s on 2 cores (most of it the
embedding of the records).
"""

from __future__ import annotations

import uuid

import pytest

from tenantry.db.engine import Database
from tenantry.metadata import MetadataManager
from tenantry.metadata.encoder import default_encoder
from tenantry.tenants import TenantRegistry
from tests.metadata.catalogue import load_queries
from tests.metadata.search_evaluation import (
    Evaluation,
    cross_language,
    evaluate_modes,
    load_catalogue,
)


@pytest.fixture(scope="module")
async def evaluations(db: Database) -> dict[str, Evaluation]:
    tenant = f"rel-{uuid.uuid4().hex[:12]}"
    await TenantRegistry(db).create(tenant, tenant)
    manager = MetadataManager(db, encoder=default_encoder())
    try:
        keys = await load_catalogue(manager, db, tenant)
        return await evaluate_modes(manager, tenant, keys)
    finally:
        await manager.close()


def _missed(evaluation: Evaluation) -> list[str]:
    """The cross-language queries with no relevant record in their top 10."""
    crossing = [q for q in load_queries() if cross_language(q)]
    assert len(crossing) >= 40  # German queries for English records, Greek, Czech, Swedish...
    return [q.text for q in crossing if not q.relevant.intersection(evaluation.found[q.text])]


def test_most_cross_language_queries_find_their_records_by_meaning(
    evaluations: dict[str, Evaluation],
) -> None:
    # Measured: 46 of the 49 find one by meaning (E5 and USE fused), 47 by hybrid search; with
    # E5 alone 43 did (5 German and 1 Greek query missed).
    assert len(_missed(evaluations["vector-only"])) <= 4
    assert len(_missed(evaluations["hybrid"])) <= 3


@pytest.mark.xfail(
    strict=True,
    reason="model limit (benchmarks/README.md, metadata relevance): hybrid finds 47 of the 49 "
    "cross-language queries' records; a Greek query (a language USE never saw, and E5-small "
    "ranks records in the query's language first) and a German one whose records never name "
    "what it asks for (jazz: only their artist's record does) miss",
)
def test_every_cross_language_query_finds_its_records(
    evaluations: dict[str, Evaluation],
) -> None:
    assert _missed(evaluations["hybrid"]) == []


def test_hybrid_beats_text_only(evaluations: dict[str, Evaluation]) -> None:
    assert evaluations["hybrid"].ndcg["all"] > evaluations["text-only"].ndcg["all"]


def test_hybrid_beats_vector_only(evaluations: dict[str, Evaluation]) -> None:
    """On the paraphrased and translated queries full text (all words) matches almost nothing
    and hybrid ranks as meaning does; on the known-item queries (a name, a title, a contract
    number) full text adds what meaning misses."""
    assert evaluations["hybrid"].ndcg["all"] > evaluations["vector-only"].ndcg["all"]

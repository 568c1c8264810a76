"""The labelled catalogue through ``MetadataManager.search_metadata``: load it into a tenant,
and measure nDCG@10 and recall@10 of text-only, vector-only and hybrid search per query language.

Used by ``tests/metadata/test_relevance.py`` and ``benchmarks/bench_metadata_relevance.py``. The
catalogue's schema names (``track``, ``contract``...) are registered in the tenant as subjects
with one permissive version each (written with SQL: there is no schema registry API yet), so that
each record's searchable text starts with its schema's name as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import text

from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.metadata import MetadataManager, MetadataSearch
from tests.metadata.catalogue import Query, Record, load_queries, load_records
from tests.metadata.relevance import ndcg_at_k, recall_at_k

__all__ = [
    "MODES",
    "Evaluation",
    "cross_language",
    "evaluate_modes",
    "evaluate_search",
    "load_catalogue",
    "subset",
]

#: The three ways to search, as ``MetadataSearch`` arguments: text alone, meaning alone (every
#: candidate kept), and the default hybrid search (RRF of both, calibrated threshold 0.01).
MODES: Mapping[str, MetadataSearch] = {
    "text-only": MetadataSearch("", semantic_search=False),
    "vector-only": MetadataSearch("", text_search=False, similarity_threshold=0.0),
    "hybrid": MetadataSearch(""),
}


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Mean nDCG@10 and recall@10 per query language (and ``all``), and each query's top 10."""

    ndcg: dict[str, float]
    recall: dict[str, float]
    queries: dict[str, int]
    found: dict[str, list[str]]  # query text -> ranked record keys


def cross_language(query: Query) -> bool:
    """Whether none of the query's relevant records is written in the query's language."""
    languages = {r.language for r in load_records() if r.key in query.relevant}
    return query.language not in languages


def subset(queries: int) -> tuple[tuple[Record, ...], tuple[Query, ...]]:
    """The first ``queries`` queries, their relevant records and as many others (a smoke test)."""
    chosen = load_queries()[:queries]
    wanted = set().union(*(q.relevant for q in chosen))
    others = [r for r in load_records() if r.key not in wanted][: len(wanted)]
    return tuple(r for r in load_records() if r.key in wanted) + tuple(others), chosen


async def load_catalogue(
    manager: MetadataManager,
    db: Database,
    tenant: str,
    records: Sequence[Record] | None = None,
) -> dict[str, str]:
    """Create the catalogue's records (default: all) in ``tenant`` and embed them: record id ->
    catalogue key."""
    records = load_records() if records is None else records
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            for name in sorted({r.schema_name for r in records}):
                params = {"name": name}
                await conn.execute(
                    text(
                        "INSERT INTO tenantry.metadata_schema_subjects (tenant_id, name, "
                        "compatibility, latest) VALUES (current_setting('tenantry.tenant_id'), "
                        ":name, 'NONE', 1)"
                    ),
                    params,
                )
                await conn.execute(
                    text(
                        "INSERT INTO tenantry.metadata_schemas (tenant_id, name, version, schema, "
                        "compatibility) VALUES (current_setting('tenantry.tenant_id'), :name, 1, "
                        "'{}'::jsonb, 'NONE')"
                    ),
                    params,
                )
    keys: dict[str, str] = {}
    for start in range(0, len(records), 8):
        chunk = records[start : start + 8]
        made = await asyncio.gather(
            *(
                manager.create_metadata(
                    tenant,
                    r.metadata_type.lower(),
                    r.content,
                    r.schema_name,
                    schema_version=1,
                    language=r.language,
                )
                for r in chunk
            )
        )
        keys.update(zip(made, (r.key for r in chunk), strict=True))
    await manager.embed_pending(tenant)
    return keys


async def evaluate_search(
    manager: MetadataManager,
    tenant: str,
    keys: Mapping[str, str],
    mode: MetadataSearch,
    *,
    with_language: bool = False,
    queries: Sequence[Query] | None = None,
) -> Evaluation:
    """Every labelled query (or ``queries``) searched in ``mode`` (``with_language``: passing the
    query's language as ``MetadataSearch.language``), scored against its relevant records."""
    per_language: dict[str, list[tuple[float, float]]] = {}
    found: dict[str, list[str]] = {}
    for query in load_queries() if queries is None else queries:
        search = replace(mode, query=query.text, language=query.language if with_language else None)
        ranked = [keys[hit.record.id] for hit in await manager.search_metadata(tenant, search)]
        found[query.text] = ranked
        scores = (ndcg_at_k(ranked, query.relevant), recall_at_k(ranked, query.relevant))
        per_language.setdefault(query.language, []).append(scores)
        per_language.setdefault("all", []).append(scores)
    return Evaluation(
        ndcg={lang: sum(s[0] for s in v) / len(v) for lang, v in per_language.items()},
        recall={lang: sum(s[1] for s in v) / len(v) for lang, v in per_language.items()},
        queries={lang: len(v) for lang, v in per_language.items()},
        found=found,
    )


async def evaluate_modes(
    manager: MetadataManager,
    tenant: str,
    keys: Mapping[str, str],
    *,
    with_language: bool = False,
    queries: Sequence[Query] | None = None,
) -> dict[str, Evaluation]:
    return {
        name: await evaluate_search(
            manager, tenant, keys, mode, with_language=with_language, queries=queries
        )
        for name, mode in MODES.items()
    }

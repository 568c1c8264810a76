"""Search statements: full-text and vector candidates, and their fusion by reciprocal rank.

Both run in the caller's tenant transaction, so row-level security scopes them, and both name
the tenant and are planned with its value (:meth:`VectorStore.plan`), so that PostgreSQL uses
the tenant's own partial indexes where it has them (:mod:`tenantry.metadata.indexes`) and reads
its rows by the primary key where it has none; no statement can read an index that holds other
tenants' rows. The vector side ranks by each encoder's part of the stored rows
(``EMBEDDING_PARTS``, :func:`part_expression`), one ranking per encoder, and has two forms,
chosen by the embedding column's type (``VectorStore.detect``): with pgvector an HNSW scan of
the tenant's index where it has one (iterative, ``hnsw.iterative_scan``, so that the other
filters cannot leave it with too few rows), else an exact ranking of the tenant's vectors;
without pgvector always the exact one.
The embedding queue's statements are here too: they are the only others that touch the column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.db.repository import DriverQuery, TenantRepository
from tenantry.metadata.encoder import Encoder, knows, parts
from tenantry.metadata.language import text_config
from tenantry.metadata.models import EMBEDDING_PARTS
from tenantry.metadata.repository import MetadataRepository
from tenantry.metadata.schemas import MetadataSearch

__all__ = [
    "RRF_K",
    "Candidates",
    "Filters",
    "Found",
    "Query",
    "VectorStore",
    "fuse",
    "part_expression",
    "run_search",
]

#: Reciprocal rank fusion's constant (Cormack et al.): a hit's score is sum(1 / (k + rank)).
RRF_K: Final = 60
_TABLE = "tenantry.metadata_records"
#: HNSW's ``ef_search`` per part of the vectors (E5, USE), not pgvector's 40: on a tenant of
#: 100,000 clustered records recall@10 of E5's index is 0.93 at 200 and 0.97 at 400, of USE's
#: 0.91 at 400 and 0.95 at 1,000, each step costing a few milliseconds (benchmarks/README.md).
EF_SEARCH: Final = (400, 1000)
#: All of the query's words (web search syntax: "a phrase", -word, or), stemmed in the query's
#: language, or all of them as written. All, not any: with any word enough, a common word
#: ("music", "for") matched half of a 100,000-record tenant, and ranking those took 1-4 s.
#: In the statement's WHERE as an expression of its parameters (not a joined subquery), so that
#: the GIN index on ``search_tsv`` serves it; the configuration is one the server has.
_TSQUERY = (
    "(websearch_to_tsquery(:config::text::regconfig, :query) || "
    "websearch_to_tsquery('simple'::regconfig, :query))"
)


@dataclass(frozen=True, slots=True)
class Filters:
    """What a search keeps: a record type, a schema, and top-level field values."""

    metadata_type: str | None = None
    schema_name: str | None = None
    fields: Mapping[str, Any] | None = None

    def sql(self) -> str:
        clauses = []
        if self.metadata_type is not None:
            clauses.append(" AND metadata_type = :metadata_type")
        if self.schema_name is not None:
            clauses.append(" AND schema_name = :schema_name")
        if self.fields:
            clauses.append(" AND fields @> :fields::jsonb")
        return "".join(clauses)

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.metadata_type is not None:
            params["metadata_type"] = self.metadata_type
        if self.schema_name is not None:
            params["schema_name"] = self.schema_name
        if self.fields:
            params["fields"] = dict(self.fields)
        return params


@dataclass(frozen=True, slots=True)
class Candidates:
    """One ranking: record ids best first, and a score per id (text rank or cosine)."""

    ids: list[str]
    scores: dict[str, float]


class VectorStore:
    """The statements of one embedding column type: ``vector`` (pgvector) or ``real[]``."""

    def __init__(self, pgvector: bool, configs: frozenset[str] = frozenset({"simple"})) -> None:
        self.pgvector = pgvector
        #: The text search configurations the server has.
        self.configs = configs
        self._cast = "::text::vector" if pgvector else "::text::real[]"
        self._queries: dict[tuple[str, str], DriverQuery] = {}

    @classmethod
    async def detect(cls, conn: AsyncConnection) -> VectorStore:
        kind = await conn.scalar(
            text(
                "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = "
                "'tenantry.metadata_records'::regclass and attname = 'embedding'"
            )
        )
        configs = (await conn.execute(text("select cfgname from pg_ts_config"))).scalars()
        return cls(str(kind).startswith("vector"), frozenset(str(c) for c in configs))

    def literal(self, vector: np.ndarray[Any, Any]) -> str:
        """``vector`` as the column type's text form."""
        body = ",".join(f"{x:.7g}" for x in vector.tolist())
        return f"[{body}]" if self.pgvector else f"{{{body}}}"

    def _query(self, name: str, filters: str, build: str) -> DriverQuery:
        key = (name, filters)
        query = self._queries.get(key)
        if query is None:
            query = self._queries[key] = DriverQuery.of(build)
        return query

    async def plan(self, repo: TenantRepository, vector_limit: int | None) -> None:
        """Settings of the search's transaction: statements planned with their values (a
        prepared statement's generic plan cannot prove which tenant's partial index applies),
        and, for a vector search of ``vector_limit`` candidates on pgvector, the HNSW scan's.

        A tenant's HNSW index is taken over ranking every one of its vectors (``enable_sort``
        off: every plan of the other statements sorts, so only the vector side's choice
        changes): PostgreSQL prices a distance like an addition and, at a few thousand rows,
        prefers the exact ranking, which reads each vector out of line (10 ms at 2,000 records,
        against 1 ms by the index; benchmarks/README.md)."""
        settings = ["set_config('plan_cache_mode', 'force_custom_plan', true)"]
        if self.pgvector and vector_limit is not None:
            settings += [
                "set_config('hnsw.iterative_scan', 'relaxed_order', true)",
                "set_config('enable_sort', 'off', true)",
            ]
        await repo.conn.exec_driver_sql("SELECT " + ", ".join(settings))

    def text_statement(self, filters: Filters) -> DriverQuery:
        """The full-text candidates' statement (parameters ``tenant``, ``query``, ``config``,
        ``limit`` and the filters')."""
        where = filters.sql()
        sql = (
            f"SELECT id, ts_rank_cd(search_tsv, {_TSQUERY}) AS rank "
            f"FROM {_TABLE} WHERE tenant_id = :tenant "
            f"AND search_tsv @@ {_TSQUERY}{where} ORDER BY rank DESC, id LIMIT :limit"
        )
        return self._query("text", where, sql)

    async def text_candidates(
        self, repo: TenantRepository, query: str, config: str, filters: Filters, limit: int
    ) -> Candidates:
        """The ``limit`` records whose text matches ``query`` best (in a transaction
        :meth:`plan` prepared)."""
        config = config if config in self.configs else "simple"
        params = {"tenant": repo.tenant_id, "query": query, "config": config, "limit": limit}
        params |= filters.params()
        rows = await repo.fetch_driver(self.text_statement(filters), params)
        return Candidates([r["id"] for r in rows], {r["id"]: float(r["rank"]) for r in rows})

    def vector_statement(self, filters: Filters, part: int = 0) -> DriverQuery:
        """The vector candidates' statement for one part of the stored rows (``EMBEDDING_PARTS``;
        parameters ``tenant``, ``v`` (the query's part), ``limit`` and the filters').

        A stored embedding is always its record's current version's (a write clears it in the
        same transaction; :meth:`store` sets it only for the current version), so the statement
        needs no ``embedded_version = version`` condition: with one, PostgreSQL estimates that
        column-to-column equality keeps 0.5% of the rows and prefers reading and sorting every
        row of the tenant to the HNSW index (0.7 s instead of a few ms at 100,000 records).
        """
        where = filters.sql()
        live = "tenant_id = :tenant AND embedding IS NOT NULL"
        column = part_expression(part, self.pgvector)
        if self.pgvector:
            width = EMBEDDING_PARTS[part][1] - EMBEDDING_PARTS[part][0]
            v = f":v::text::vector({width})"
            sql = (
                f"SELECT id, 1 - ({column} <=> {v}) AS cos FROM {_TABLE} "
                f"WHERE {live}{where} ORDER BY {column} <=> {v} LIMIT :limit"
            )
        else:
            sql = (
                f"SELECT id, (SELECT sum(a * b) FROM unnest({column}, :v{self._cast}) "
                f"AS t(a, b)) AS cos FROM {_TABLE} WHERE {live}{where} "
                "ORDER BY cos DESC, id LIMIT :limit"
            )
        return self._query(f"vector{part}", where, sql)

    async def vector_candidates(
        self,
        repo: TenantRepository,
        vector: np.ndarray[Any, Any],
        filters: Filters,
        limit: int,
        part: int = 0,
    ) -> Candidates:
        """The ``limit`` records whose ``part`` is nearest ``vector`` (cosine; ``vector`` is the
        query's part), among current embeddings (in a transaction :meth:`plan` prepared)."""
        if self.pgvector:
            ef_search = max(EF_SEARCH[part], min(limit * 4, 1000))
            await repo.conn.exec_driver_sql(
                f"SELECT set_config('hnsw.ef_search', '{ef_search}', true)"
            )
        params = {"tenant": repo.tenant_id, "v": self.literal(vector), "limit": limit}
        params |= filters.params()
        rows = await repo.fetch_driver(self.vector_statement(filters, part), params)
        scores = {r["id"]: float(r["cos"]) for r in rows}
        # relaxed_order may return near neighbours slightly out of order: sort them here
        return Candidates(sorted(scores, key=lambda i: (-scores[i], i)), scores)

    async def due(self, repo: TenantRepository, limit: int) -> list[tuple[str, int, str]]:
        """Records whose current version has no embedding yet: (id, version, text), oldest first."""
        sql = (
            f"SELECT id, version, search_text FROM {_TABLE} "
            "WHERE embedded_version IS DISTINCT FROM version ORDER BY updated_at LIMIT :limit"
        )
        rows = await repo.fetch_driver(self._query("due", "", sql), {"limit": limit})
        return [(r["id"], r["version"], r["search_text"]) for r in rows]

    async def store(
        self,
        repo: TenantRepository,
        items: Sequence[tuple[str, int, np.ndarray[Any, Any] | None]],
        model: str,
    ) -> int:
        """Store embeddings of (id, version); a record changed since is left for the next round."""
        sql = (
            f"UPDATE {_TABLE} AS r SET embedding = u.vec{self._cast}, embedding_model = :model, "
            "embedded_version = u.ver FROM unnest(:ids::text[], :vers::int[], :vecs::text[]) "
            "AS u(id, ver, vec) WHERE r.id = u.id AND r.version = u.ver"
        )
        params = {
            "ids": [i for i, _, _ in items],
            "vers": [v for _, v, _ in items],
            "vecs": [None if e is None else self.literal(e) for _, _, e in items],
            "model": model,
        }
        status = await repo.execute_driver(self._query("store", "", sql), params)
        return int(status.rsplit(" ", 1)[-1])


def part_expression(part: int, pgvector: bool) -> str:
    """Part ``part`` of the stored rows as SQL: the expression the statements rank by and a
    tenant's vector index is built on (they must be the same text for the index to serve)."""
    start, stop = EMBEDDING_PARTS[part]
    if pgvector:
        return f"(subvector(embedding, {start + 1}, {stop - start})::vector({stop - start}))"
    return f"embedding[{start + 1}:{stop}]"


def fuse(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: ids by the sum of 1 / (k + rank) over the rankings they are in."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


@dataclass(frozen=True, slots=True)
class Found:
    """A search's result: the rows of the hits with their fused scores, best first, and the
    evidence per id (calibrated similarity, place in the text ranking)."""

    hits: list[tuple[RowMapping, float]]
    similarity: dict[str, float]
    text_rank: dict[str, int]


@dataclass(frozen=True, slots=True)
class Query:
    """A search as the statements take it: the search, its filters, and, when it searches by
    meaning, the query's vector and the encoder that made it (which calibrates similarities)."""

    search: MetadataSearch
    filters: Filters
    vector: np.ndarray[Any, Any] | None = None
    encoder: Encoder | None = None


async def run_search(repo: MetadataRepository, store: VectorStore, query: Query) -> Found:
    """``query`` in the tenant transaction of ``repo``: the text candidates and each encoder's
    vector candidates (three times ``limit``, at least 30; an encoder that does not know the
    query's declared language is left out), vector candidates below the threshold on their
    encoder's calibration dropped, all fused by RRF; a hit's similarity is its best encoder's.
    The query's vector is made before (encoding holds no connection)."""
    search, filters, encoder = query.search, query.filters, query.encoder
    pool = max(search.limit * 3, 30)
    await store.plan(repo, pool if query.vector is not None else None)
    rankings: list[list[str]] = []
    text_rank: dict[str, int] = {}
    if search.text_search or query.vector is None:
        config = text_config(search.language)
        texts = await store.text_candidates(repo, search.query, config, filters, pool)
        rankings.append(texts.ids)
        text_rank = {i: n for n, i in enumerate(texts.ids, start=1)}
    similarity: dict[str, float] = {}
    if query.vector is not None and encoder is not None:
        for number, part in enumerate(parts(encoder)):
            if not knows(part.encoder, search.language):
                continue  # an encoder that never saw the query's language ranks at random
            near = await store.vector_candidates(
                repo, query.vector[part.start : part.stop], filters, pool, number
            )
            kept: dict[str, float] = {}
            if near.ids:
                calibrated = part.encoder.calibrate(np.array([near.scores[i] for i in near.ids]))
                kept = {
                    i: float(score)
                    for i, score in zip(near.ids, calibrated, strict=True)
                    if score >= search.similarity_threshold
                }
            for i, score in kept.items():
                similarity[i] = max(score, similarity.get(i, 0.0))
            rankings.append([i for i in near.ids if i in kept])
    fused = fuse(rankings)[: search.limit]
    rows = {r["id"]: r for r in await repo.get_many([i for i, _ in fused])}
    return Found([(rows[i], score) for i, score in fused if i in rows], similarity, text_rank)

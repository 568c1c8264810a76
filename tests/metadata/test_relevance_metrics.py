"""The evaluation's metrics, on rankings small enough to compute by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.metadata.catalogue import Query, Record
from tests.metadata.relevance import evaluate, ndcg_at_k, recall_at_k


def test_ndcg_is_one_for_an_ideal_ranking() -> None:
    assert ndcg_at_k(["a", "b", "x", "y"], frozenset({"a", "b"})) == pytest.approx(1.0)
    assert ndcg_at_k(["b", "a"], frozenset({"a", "b"})) == pytest.approx(1.0)


def test_ndcg_discounts_by_the_log_of_the_rank() -> None:
    # One relevant record, at rank 2: 1 / log2(3) over the ideal 1 / log2(2) = 1.
    assert ndcg_at_k(["x", "a"], frozenset({"a"})) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(["x", "a"], frozenset({"a"})) == pytest.approx(0.6309, abs=1e-4)
    # Relevant {a, b} at ranks 1 and 3: (1 + 1/2) / (1 + 1/log2(3)) = 1.5 / 1.6309.
    assert ndcg_at_k(["a", "x", "b"], frozenset({"a", "b"})) == pytest.approx(0.9197, abs=1e-4)


def test_ndcg_counts_only_the_first_k() -> None:
    ranked = [f"x{i}" for i in range(10)] + ["a"]
    assert ndcg_at_k(ranked, frozenset({"a"}), k=10) == 0.0
    assert ndcg_at_k(ranked, frozenset({"a"}), k=11) == pytest.approx(1 / math.log2(12))
    # With more relevant records than k, the ideal is k hits: ten relevant first is perfect.
    many = frozenset(f"r{i}" for i in range(12))
    assert ndcg_at_k(sorted(many), many, k=10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", *sorted(many)], many, k=3) == pytest.approx(
        (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    )


def test_recall_is_the_share_of_relevant_records_found() -> None:
    relevant = frozenset({"a", "b", "c", "d"})
    assert recall_at_k(["a", "x", "b", "y"], relevant, k=3) == 0.5
    assert recall_at_k(["a", "x", "b", "c"], relevant, k=10) == 0.75
    assert recall_at_k(["x", "y"], relevant) == 0.0
    assert recall_at_k(["d", "c", "b", "a"], relevant, k=4) == 1.0


def test_a_query_without_relevant_records_is_refused() -> None:
    with pytest.raises(ValueError, match="relevant"):
        ndcg_at_k(["a"], frozenset())
    with pytest.raises(ValueError, match="relevant"):
        recall_at_k(["a"], frozenset())


def test_evaluate_ranks_by_cosine_per_language_and_admits_by_mask() -> None:
    records = [Record(key, "BUSINESS", "track", "en", {}) for key in ("a", "b", "c")]
    queries = [
        Query("first", "en", frozenset({"b"})),
        Query("zweite", "de", frozenset({"a", "c"})),
    ]
    cosines = np.array([[0.9, 0.8, 0.1], [0.2, 0.7, 0.6]])
    result = evaluate(cosines, records, queries, k=2)
    # en: ranking a, b: b at rank 2. de: ranking b, c: c at rank 2, a not in the top 2.
    assert result.ndcg["en"] == pytest.approx(1 / math.log2(3))
    assert result.ndcg["de"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert result.recall == {"en": 1.0, "de": 0.5, "all": 0.75}
    assert result.queries == {"en": 1, "de": 1, "all": 2}
    # Admitting only cosines above 0.5 leaves en's ranking a, b and de's b, c.
    admitted = evaluate(cosines, records, queries, k=3, admitted=cosines > 0.5)
    assert admitted.recall == {"en": 1.0, "de": 0.5, "all": 0.75}
    # Admitting nothing for en leaves it no record.
    mask = np.array([[False, False, False], [True, True, True]])
    nothing = evaluate(cosines, records, queries, k=3, admitted=mask)
    assert nothing.ndcg["en"] == 0.0
    assert nothing.recall["de"] == 1.0

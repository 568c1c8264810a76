"""The evaluation's metrics, on rankings small enough to compute by hand."""

from __future__ import annotations

import math

import pytest

from tests.metadata.relevance import ndcg_at_k, recall_at_k


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

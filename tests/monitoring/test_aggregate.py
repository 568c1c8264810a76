"""In-process aggregation: slots, folding, the series cap and label checks."""

from __future__ import annotations

import pytest

from tenantry.errors import InvalidInput
from tenantry.monitoring.aggregate import Aggregator, labels_key, labels_of


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_values_of_a_slot_become_one_bucket_per_series() -> None:
    clock = Clock()
    agg = Aggregator(resolution=10, clock=clock)
    for value in (1.0, 2.0, 6.0):
        assert agg.record("t1", "latency", value, labels_of({"route": "/a"}))
    agg.record("t1", "latency", 100.0, labels_of({"route": "/b"}))
    agg.record("t2", "latency", 7.0, frozenset())
    assert agg.drain() == []  # the slot is still open
    clock.now += 10
    agg.record("t1", "latency", 3.0, labels_of({"route": "/a"}))  # the next slot
    buckets = {(b.tenant_id, labels_key(b.labels)): b for b in agg.drain()}
    assert set(buckets) == {("t1", "route=/a"), ("t1", "route=/b"), ("t2", "")}
    first = buckets[("t1", "route=/a")]
    assert (first.count, first.total, first.minimum, first.maximum) == (3, 9.0, 1.0, 6.0)
    assert first.start == 1_000_000.0
    last = agg.drain(everything=True)
    assert [(b.count, b.start) for b in last] == [(1, 1_000_010.0)]


def test_folding_keeps_memory_bounded_and_the_totals_exact() -> None:
    clock = Clock()
    agg = Aggregator(resolution=10, fold_every=100, clock=clock)
    for n in range(1, 1001):
        agg.record("t", "x", float(n), frozenset())
    assert len(agg._values[("t", "x", frozenset())]) < 100
    (bucket,) = agg.drain(everything=True)
    assert (bucket.count, bucket.total, bucket.minimum, bucket.maximum) == (1000, 500500.0, 1, 1000)
    median = bucket.sketch.quantile(0.5)
    assert median is not None
    assert abs(median - 500) <= 6


def test_a_tenant_past_its_series_cap_is_dropped_and_counted_alone() -> None:
    agg = Aggregator(resolution=10, max_series=3, clock=Clock())
    for n in range(5):
        agg.record("greedy", "m", 1.0, labels_of({"user": str(n)}))
    assert agg.series("greedy") == 3
    assert agg.dropped == {"greedy": 2}
    assert agg.record("other", "m", 1.0, labels_of({"user": "0"}))  # others are not affected
    assert agg.record("greedy", "m", 2.0, labels_of({"user": "0"}))  # a known series still is


@pytest.mark.parametrize(
    ("name", "tags"),
    [
        ("bad name", None),
        ("1x", None),
        ("x" * 200, None),
        ("ok", {"bad label": "v"}),
        ("ok", {"l": "v" * 300}),
        ("ok", {f"l{n}": "v" for n in range(17)}),
        ("ok", {"l": 5}),
    ],
)
def test_bad_names_and_labels_are_refused(name: str, tags: dict[str, object] | None) -> None:
    agg = Aggregator(clock=Clock())
    with pytest.raises(InvalidInput):
        agg.record("t", name, 1.0, labels_of(tags))  # type: ignore[arg-type]
    assert agg.series("t") == 0


def test_unhashable_tags_are_refused() -> None:
    with pytest.raises(InvalidInput, match="strings"):
        labels_of({"l": ["a"]})  # type: ignore[dict-item]
    assert labels_key(labels_of({"b": "x,y", "a": "1=2"})) == "a=1\\=2,b=x\\,y"

"""The quantile sketch: within 1% of the data's quantiles, mergeable, bounded, serialisable."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantry.monitoring.sketch import RELATIVE_ACCURACY, Sketch


@pytest.mark.parametrize("q", [0.0, 0.5, 0.9, 0.95, 0.99, 1.0])
def test_quantiles_are_within_the_relative_accuracy(q: float) -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(mean=-3.0, sigma=1.5, size=20_000)  # latencies in seconds
    sketch = Sketch.of(values)
    exact = float(np.quantile(values, q, method="lower"))
    estimate = sketch.quantile(q)
    assert estimate is not None
    assert abs(estimate - exact) <= RELATIVE_ACCURACY * exact * 1.0001


def test_negative_zero_and_extreme_values() -> None:
    sketch = Sketch.of([-5.0, -1.0, 0.0, 0.0, 1e-30, 2.0, 1e300])
    assert sketch.count == 7
    assert sketch.zeros == 3  # 0, 0 and a magnitude below MIN_VALUE
    low, high = sketch.quantile(0.0), sketch.quantile(1.0)
    assert low is not None
    assert high is not None
    assert abs(low + 5.0) <= 0.05 + 1e-9
    assert high <= 1.02e18  # clamped to the top bucket
    assert Sketch().quantile(0.5) is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        sketch.quantile(1.5)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=200),
    st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=200),
)
def test_merging_equals_sketching_the_union(a: list[float], b: list[float]) -> None:
    merged = Sketch.of(a)
    merged.merge(Sketch.of(b))
    whole = Sketch.of(a + b)
    assert (merged.positive, merged.negative, merged.zeros) == (
        whole.positive,
        whole.negative,
        whole.zeros,
    )
    again = Sketch.from_bytes(merged.to_bytes())
    assert (again.positive, again.negative, again.zeros) == (
        merged.positive,
        merged.negative,
        merged.zeros,
    )

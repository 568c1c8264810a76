"""The shipped load traces (benchmarks/data/load_traces) are what the generator makes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tenantry.ai.traces import (
    ALL_TRACES,
    TEST_SEED_OFFSET,
    TEST_TRACES,
    TRACES,
    generate_trace,
    read_trace,
    write_traces,
)

FOLDER = Path(__file__).parents[2] / "benchmarks" / "data" / "load_traces"


@pytest.mark.parametrize("spec", ALL_TRACES, ids=lambda s: s.name)
def test_the_shipped_files_match_the_generator(spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shipped = read_trace(FOLDER / f"{spec.name}.csv")
    made = generate_trace(spec)
    assert len(shipped) == spec.length == len(made)
    np.testing.assert_allclose(shipped, made, rtol=1e-5)
    (path,) = write_traces(tmp_path, [spec])
    assert path.read_bytes() == (FOLDER / path.name).read_bytes()


def test_traces_have_the_structure_they_claim() -> None:
    spec = TRACES[0]  # retail: office hours, quiet weekends, growing
    y = generate_trace(spec).reshape(-1, 24)  # days x hours
    assert y[:, 10].mean() > 4 * y[:, 3].mean()  # 10:00 is busier than 03:00
    weekdays, weekends = y[np.arange(len(y)) % 7 < 5], y[np.arange(len(y)) % 7 >= 5]
    assert weekends.mean() < 0.6 * weekdays.mean()
    assert y[-7:].mean() > y[:7].mean()
    assert np.all(y >= 0)


def test_the_test_traces_are_the_development_specs_with_new_seeds() -> None:
    assert len(TEST_TRACES) == len(TRACES)
    for dev, test in zip(TRACES, TEST_TRACES, strict=True):
        assert test.name == f"{dev.name}-test"
        assert test.seed == dev.seed + TEST_SEED_OFFSET
        assert (test.days, test.daily, test.noise, test.spikes) == (
            dev.days,
            dev.daily,
            dev.noise,
            dev.spikes,
        )
        assert not np.array_equal(generate_trace(test), generate_trace(dev))
    assert len({s.name for s in ALL_TRACES}) == len(ALL_TRACES)

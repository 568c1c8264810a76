"""A mergeable quantile sketch with a relative error bound (DDSketch's logarithmic mapping).

A value ``x > 0`` falls in bucket ``ceil(log(x) / log(gamma))`` with ``gamma = (1 + a) / (1 - a)``;
every value of a bucket is within ``a`` (1%) of the bucket's representative ``2 gamma^i /
(gamma + 1)``, so a quantile read from the counts is within 1% of a true value of the data
(Masson et al., *DDSketch*, VLDB 2019). Negative values mirror into their own buckets; zero (and
magnitudes below ``MIN_VALUE``) is counted apart. Sketches of the same mapping merge by adding
counts, which is what downsampling (10 s buckets into minutes into hours) and a query over many
buckets need.

Values are bucketed in bulk with numpy (:meth:`Sketch.of`), ~20 ns a value, so recording a
metric only appends to a list and the sketch is built when the buffer is flushed. Bucket
indexes are clamped to what ``MIN_VALUE``..``MAX_VALUE`` give (about 4,000 buckets a sign at
most), which bounds a sketch's size whatever it is fed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

import msgpack
import numpy as np
from numpy.typing import NDArray

__all__ = ["RELATIVE_ACCURACY", "Sketch"]

#: The guaranteed relative error of a quantile.
RELATIVE_ACCURACY: Final = 0.01
_GAMMA: Final = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA: Final = math.log(_GAMMA)
#: Magnitudes below are counted as zero; above are counted in the top bucket.
MIN_VALUE: Final = 1e-12
MAX_VALUE: Final = 1e18
_LOW: Final = math.ceil(math.log(MIN_VALUE) / _LOG_GAMMA)
_HIGH: Final = math.ceil(math.log(MAX_VALUE) / _LOG_GAMMA)


def _counts(magnitudes: NDArray[np.float64]) -> dict[int, int]:
    if magnitudes.size == 0:
        return {}
    indexes = np.clip(np.ceil(np.log(magnitudes) / _LOG_GAMMA), _LOW, _HIGH).astype(np.int64)
    keys, counts = np.unique(indexes, return_counts=True)
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


def _add(into: dict[int, int], other: dict[int, int]) -> None:
    for index, count in other.items():
        into[index] = into.get(index, 0) + count


@dataclass(slots=True)
class Sketch:
    """Counts per bucket of positive and of negative values, and of zeros."""

    positive: dict[int, int] = field(default_factory=dict)
    negative: dict[int, int] = field(default_factory=dict)
    zeros: int = 0

    @classmethod
    def of(cls, values: NDArray[np.float64] | list[float]) -> Sketch:
        """The sketch of ``values`` (finite numbers)."""
        data = np.asarray(values, dtype=np.float64)
        small = np.abs(data) < MIN_VALUE
        return cls(
            positive=_counts(data[(data > 0) & ~small]),
            negative=_counts(-data[(data < 0) & ~small]),
            zeros=int(small.sum()),
        )

    @property
    def count(self) -> int:
        return self.zeros + sum(self.positive.values()) + sum(self.negative.values())

    def merge(self, other: Sketch) -> None:
        """Add ``other``'s counts to this sketch."""
        _add(self.positive, other.positive)
        _add(self.negative, other.negative)
        self.zeros += other.zeros

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (0 <= q <= 1) within 1% of a value of the data; None if empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError("q must be between 0 and 1")
        total = self.count
        if total == 0:
            return None
        rank = q * (total - 1)
        seen = 0
        for index in sorted(self.negative, reverse=True):  # the most negative first
            seen += self.negative[index]
            if seen > rank:
                return -_value(index)
        seen += self.zeros
        if seen > rank:
            return 0.0
        for index in sorted(self.positive):
            seen += self.positive[index]
            if seen > rank:
                return _value(index)
        return _value(max(self.positive))  # rounding at q = 1

    def to_bytes(self) -> bytes:
        packed: bytes = msgpack.packb(
            [self.zeros, _flat(self.positive), _flat(self.negative)], use_bin_type=True
        )
        return packed

    @classmethod
    def from_bytes(cls, data: bytes) -> Sketch:
        zeros, positive, negative = msgpack.unpackb(data, raw=False, strict_map_key=False)
        return cls(_unflat(positive), _unflat(negative), int(zeros))


def _value(index: int) -> float:
    return 2.0 * _GAMMA**index / (_GAMMA + 1.0)


def _flat(counts: dict[int, int]) -> list[int]:
    return [x for pair in sorted(counts.items()) for x in pair]


def _unflat(flat: list[Any]) -> dict[int, int]:
    return {int(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

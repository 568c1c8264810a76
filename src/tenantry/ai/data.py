"""Training and prediction inputs: checked once, before anything is trained or stored.

:class:`TrainingData` is what ``train_model`` takes (the documents' ``training_data``): feature
rows, and per type a ``target`` (the latency a ``performance_predictor`` learns) or ``labels``
(1 for an anomaly, to measure an ``anomaly_detector``), with where the rows came from (its
lineage: ``source``, the time range they cover, which rows). Every value must be a finite number;
bounds keep one tenant's training cheap for the others.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from tenantry.errors import InvalidInput

__all__ = [
    "MAX_FEATURES",
    "MAX_PREDICT_ROWS",
    "MAX_TRAINING_ROWS",
    "MIN_TRAINING_ROWS",
    "TrainingData",
    "input_rows",
]

MIN_TRAINING_ROWS: Final = 20
MAX_TRAINING_ROWS: Final = 100_000
MAX_FEATURES: Final = 64
MAX_PREDICT_ROWS: Final = 10_000
_MAX_TEXT: Final = 200

Matrix = npt.NDArray[np.float64]


def _matrix(rows: object, what: str, *, max_rows: int) -> Matrix:
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or not rows:
        raise InvalidInput(f"{what} is a non-empty list of rows of numbers")
    if len(rows) > max_rows:
        raise InvalidInput(f"{what} has at most {max_rows:,} rows (it has {len(rows):,})")
    width = None
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence) or not row:
            raise InvalidInput(f"{what}[{i}] is a non-empty list of numbers")
        if width is None:
            width = len(row)
        if len(row) != width:
            raise InvalidInput(f"{what}[{i}] has {len(row)} features, the first row {width}")
    if width is None or width > MAX_FEATURES:
        raise InvalidInput(f"{what} has at most {MAX_FEATURES} features")
    try:
        matrix = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} holds something that is not a number") from None
    if any(isinstance(v, bool) for row in rows for v in row):
        raise InvalidInput(f"{what} holds a boolean: give numbers")
    if not np.isfinite(matrix).all():
        raise InvalidInput(f"{what} holds NaN or an infinity: every value must be finite")
    return matrix


def _vector(values: object, what: str, length: int) -> Matrix:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InvalidInput(f"{what} is a list of numbers")
    if len(values) != length:
        raise InvalidInput(f"{what} has {len(values)} values for {length} rows")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise InvalidInput(f"{what} holds something that is not a number")
    vector = np.asarray(values, dtype=np.float64)
    if not np.isfinite(vector).all():
        raise InvalidInput(f"{what} holds NaN or an infinity")
    return vector


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise InvalidInput(f"{what} is a string of at most {_MAX_TEXT} characters")
    return value


@dataclass(frozen=True)
class TrainingData:
    """Rows to train on, checked (:meth:`of`). ``target``: a regressor's; ``labels``: 0/1."""

    features: Matrix = field(repr=False)
    target: Matrix | None = field(default=None, repr=False)
    labels: Matrix | None = field(default=None, repr=False)
    feature_names: tuple[str, ...] = ()
    source: str = "caller"
    start: datetime | None = None
    end: datetime | None = None
    rows: str = ""
    #: Trained by the service from its own data (:mod:`tenantry.ai.auto`); never from a caller.
    automatic: bool = False

    @classmethod
    def of(cls, value: TrainingData | Mapping[str, Any]) -> TrainingData:
        """``value`` checked: a mapping of ``features`` (rows), ``target``, ``labels``,
        ``feature_names``, and the lineage ``source``, ``start``, ``end``, ``rows``."""
        if isinstance(value, TrainingData):
            return value
        if not isinstance(value, Mapping):
            raise InvalidInput("training_data is a mapping with features (a list of rows)")
        unknown = set(value) - {
            "features", "target", "labels", "feature_names", "source", "start", "end", "rows",
        }  # fmt: skip
        if unknown:
            raise InvalidInput(f"training_data has unknown fields: {', '.join(sorted(unknown))}")
        features = _matrix(value.get("features"), "features", max_rows=MAX_TRAINING_ROWS)
        n, width = features.shape
        if n < MIN_TRAINING_ROWS:
            raise InvalidInput(f"training needs at least {MIN_TRAINING_ROWS} rows (got {n})")
        target = value.get("target")
        labels = value.get("labels")
        label_vector = None if labels is None else _vector(labels, "labels", n)
        if label_vector is not None and not np.isin(label_vector, (0.0, 1.0)).all():
            raise InvalidInput("labels are 0 (normal) or 1 (anomaly)")
        names = value.get("feature_names") or ()
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise InvalidInput("feature_names is a list of strings")
        names = tuple(_text(name, "a feature name") for name in names)
        if names and len(names) != width:
            raise InvalidInput(f"feature_names has {len(names)} names for {width} features")
        start, end = value.get("start"), value.get("end")
        for moment, what in ((start, "start"), (end, "end")):
            if moment is not None and not isinstance(moment, datetime):
                raise InvalidInput(f"{what} is a time")
        return cls(
            features,
            None if target is None else _vector(target, "target", n),
            label_vector,
            names,
            _text(value.get("source", "caller"), "source"),
            start,
            end,
            _text(value.get("rows", ""), "rows"),
        )

    @property
    def width(self) -> int:
        return int(self.features.shape[1])

    def lineage(self) -> dict[str, Any]:
        """Which data trained a version: its source, rows, time range, count, SHA-256 (of the
        features, target and labels as little-endian float64), and whether the service trained
        it on its own (``automatic``)."""
        digest = hashlib.sha256(self.features.astype("<f8").tobytes())
        for part in (self.target, self.labels):
            digest.update(b"\x00" if part is None else part.astype("<f8").tobytes())
        return {
            "source": self.source,
            "rows": self.rows,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "row_count": int(self.features.shape[0]),
            "feature_count": self.width,
            "feature_names": list(self.feature_names),
            "sha256": digest.hexdigest(),
            "automatic": self.automatic,
        }


def input_rows(value: object, feature_names: Sequence[str], width: int) -> tuple[Matrix, bool]:
    """The rows of a prediction's ``input_data`` and whether it was one row: a list of numbers
    (one row), a list of rows, a mapping of feature name to number (one row, by the names the
    model was trained with) or a list of such mappings."""
    single = isinstance(value, Mapping) or (
        isinstance(value, Sequence)
        and not isinstance(value, (str, bytes))
        and bool(value)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )
    rows: Any = [value] if single else value
    if isinstance(rows, Sequence) and rows and all(isinstance(r, Mapping) for r in rows):
        if not feature_names:
            raise InvalidInput("the model was trained without feature_names: give rows of numbers")
        rows = [_by_name(row, feature_names) for row in rows]
    matrix = _matrix(rows, "input_data", max_rows=MAX_PREDICT_ROWS)
    if matrix.shape[1] != width:
        raise InvalidInput(f"input_data has {matrix.shape[1]} features; the model takes {width}")
    return matrix, single


def _by_name(row: Mapping[str, Any], names: Sequence[str]) -> list[Any]:
    missing = [n for n in names if n not in row]
    extra = sorted(set(row) - set(names))
    if missing or extra:
        raise InvalidInput(
            f"input_data's features are {', '.join(names)} (missing: {', '.join(missing) or '-'}"
            f"; unknown: {', '.join(InvalidInput.excerpt(e, 40) for e in extra) or '-'})"
        )
    return [row[n] for n in names]


def finite(value: float) -> float | None:
    """``value``, or None where JSON has no number for it."""
    return value if math.isfinite(value) else None

"""The model types: how each is trained, measured, stored and asked; pluggable by name.

Each type is a :class:`ModelKind`:

- ``performance_predictor``: latency from load features, scikit-learn's
  HistGradientBoostingRegressor. Held out: a seeded 20 % of the rows. **Accuracy** is R² on them
  (clipped at 0); the metrics add MAE, MAPE and the MAE of predicting the training mean (the
  baseline it must beat).
- ``anomaly_detector``: IsolationForest (batch, the default) or river's HalfSpaceTrees
  (``method: half_space_trees``, the stream detector). A row's score is higher the more
  anomalous it is; a row is an anomaly when its score reaches the **decision threshold**: the
  ``ANOMALY_DETECTION_THRESHOLD`` quantile of the training rows' scores (0.95: the most unusual
  5 % of what it was trained on). **Accuracy** is F1 on the held-out rows when ``labels`` are
  given; without labels a detector has no accuracy and is never promoted automatically.
- ``load_forecasting``: the load forecaster (:mod:`tenantry.ai.forecasting`).

:mod:`tenantry.ai.catalogue` names them (``MODEL_TYPES``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
from river.anomaly import HalfSpaceTrees
from sklearn.ensemble import HistGradientBoostingRegressor, IsolationForest

from tenantry.ai.data import Matrix, TrainingData
from tenantry.ai.files import (
    HST_JSON,
    SKOPS,
    dump_estimator,
    dump_hst,
    load_estimator,
    load_hst,
)
from tenantry.errors import InvalidInput

__all__ = [
    "AnomalyDetector",
    "LoadedModel",
    "ModelKind",
    "PerformancePredictor",
    "Progress",
    "Trained",
    "mape",
    "parameters_of",
]

Progress = Callable[[float, str], None]
_HOLDOUT: Final = 0.2
_SEED: Final = 0


@dataclass(frozen=True)
class Trained:
    """A trained model, not yet stored: its file, metrics, parameters, held-out rows."""

    file: bytes = field(repr=False)
    file_format: str
    metrics: dict[str, Any]
    parameters: dict[str, Any]
    #: On the held-out rows; None when it cannot be measured (an unlabelled detector).
    accuracy: float | None
    holdout: Matrix = field(repr=False)
    holdout_truth: Matrix | None = field(repr=False)


@dataclass(frozen=True)
class LoadedModel:
    """A stored version, loaded: what :meth:`ModelKind.predict` asks."""

    model: Any = field(repr=False)
    parameters: Mapping[str, Any]
    width: int
    feature_names: tuple[str, ...]


class ModelKind(Protocol):
    """A model type: training, loading, prediction and accuracy."""

    def check(self, data: TrainingData, parameters: Mapping[str, Any]) -> None:
        """Raise :class:`~tenantry.errors.InvalidInput` for data or parameters it cannot train."""

    def train(
        self, data: TrainingData, parameters: Mapping[str, Any], *, quantile: float,
        progress: Progress,
    ) -> Trained: ...  # fmt: skip

    def load(self, file: bytes, file_format: str, sha256: bytes) -> Any: ...

    def predict(self, loaded: LoadedModel, rows: Matrix) -> list[Any]: ...

    def accuracy(self, loaded: LoadedModel, rows: Matrix, truth: Matrix | None) -> float | None:
        """The accuracy of ``loaded`` on rows it was not trained on."""


def _split(n: int) -> tuple[Any, Any]:
    order = np.random.default_rng(_SEED).permutation(n)
    cut = max(1, round(n * _HOLDOUT))
    return order[cut:], order[:cut]


def parameters_of(
    given: Mapping[str, Any], allowed: Mapping[str, tuple[type, float, float]]
) -> dict[str, Any]:
    unknown = set(given) - set(allowed)
    if unknown:
        raise InvalidInput(
            f"unknown parameters {', '.join(sorted(unknown))}: use {', '.join(sorted(allowed))}"
        )
    out: dict[str, Any] = {}
    for name, (kind, low, high) in allowed.items():
        if name not in given:
            continue
        value = given[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (low <= value <= high)
            or (kind is int and not float(value).is_integer())
        ):
            raise InvalidInput(f"{name} is a {kind.__name__} in [{low:g}, {high:g}]")
        out[name] = kind(value)
    return out


class PerformancePredictor:
    """Latency from load features (see the module docstring)."""

    PARAMETERS: Final = {
        "max_iter": (int, 1, 500),
        "learning_rate": (float, 0.001, 1.0),
        "max_leaf_nodes": (int, 2, 255),
    }

    def check(self, data: TrainingData, parameters: Mapping[str, Any]) -> None:
        if data.target is None:
            raise InvalidInput("a performance_predictor needs a target (the latency of each row)")
        parameters_of(parameters, self.PARAMETERS)

    def train(
        self, data: TrainingData, parameters: Mapping[str, Any], *, quantile: float,
        progress: Progress,
    ) -> Trained:  # fmt: skip
        del quantile
        self.check(data, parameters)
        if data.target is None:  # check() refused it already; for the type checker
            raise InvalidInput("a performance_predictor needs a target")
        chosen = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31}
        chosen |= parameters_of(parameters, self.PARAMETERS)
        train, held = _split(len(data.features))
        progress(0.1, "fitting")
        model = HistGradientBoostingRegressor(**chosen, random_state=_SEED)
        model.fit(data.features[train], data.target[train])
        progress(0.7, "measuring")
        x_held, y_held = data.features[held], data.target[held]
        predicted = model.predict(x_held)
        baseline = float(np.mean(data.target[train]))
        r2 = _r2(y_held, predicted)
        metrics: dict[str, Any] = {
            "r2": r2,
            "mae": float(np.mean(np.abs(y_held - predicted))),
            "mape": mape(y_held, predicted),
            "baseline_mae": float(np.mean(np.abs(y_held - baseline))),
            "train_rows": len(train),
            "held_out_rows": len(held),
        }
        accuracy = max(0.0, r2)
        metrics["accuracy"] = accuracy
        progress(0.8, "serializing")
        return Trained(dump_estimator(model), SKOPS, metrics, chosen, accuracy, x_held, y_held)

    def load(self, file: bytes, file_format: str, sha256: bytes) -> Any:
        if file_format != SKOPS:
            raise InvalidInput(f"a performance_predictor is stored as {SKOPS}")
        return load_estimator(file, sha256)

    def predict(self, loaded: LoadedModel, rows: Matrix) -> list[Any]:
        return [float(v) for v in loaded.model.predict(rows)]

    def accuracy(self, loaded: LoadedModel, rows: Matrix, truth: Matrix | None) -> float | None:
        if truth is None or rows.shape[1] != loaded.width:
            return None
        return max(0.0, _r2(truth, loaded.model.predict(rows)))


def _r2(truth: Matrix, predicted: Matrix) -> float:
    total = float(np.sum((truth - np.mean(truth)) ** 2))
    residual = float(np.sum((truth - predicted) ** 2))
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


def mape(truth: Matrix, predicted: Matrix) -> float | None:
    nonzero = truth != 0
    if not nonzero.any():
        return None
    return float(np.mean(np.abs((truth[nonzero] - predicted[nonzero]) / truth[nonzero])))


class AnomalyDetector:
    """IsolationForest or HalfSpaceTrees (see the module docstring)."""

    METHODS: Final = ("isolation_forest", "half_space_trees")
    PARAMETERS: Final = {
        "n_estimators": (int, 1, 500),  # IsolationForest's trees, or HalfSpaceTrees'
        "height": (int, 1, 15),  # HalfSpaceTrees
        "window_size": (int, 10, 10_000),  # HalfSpaceTrees
    }

    def _method(self, parameters: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        rest = dict(parameters)
        method = rest.pop("method", "isolation_forest")
        if method not in self.METHODS:
            raise InvalidInput(f"method is one of {', '.join(self.METHODS)}")
        return method, parameters_of(rest, self.PARAMETERS)

    def check(self, data: TrainingData, parameters: Mapping[str, Any]) -> None:
        self._method(parameters)

    def train(
        self, data: TrainingData, parameters: Mapping[str, Any], *, quantile: float,
        progress: Progress,
    ) -> Trained:  # fmt: skip
        method, chosen = self._method(parameters)
        train, held = _split(len(data.features))
        x_train = data.features[train]
        progress(0.1, "fitting")
        if method == "isolation_forest":
            trees = chosen.get("n_estimators", 100)
            model: Any = IsolationForest(n_estimators=trees, random_state=_SEED).fit(x_train)
            params: dict[str, Any] = {"method": method, "n_estimators": trees}
        else:
            model, params = _fit_hst(x_train, chosen)
        loaded = LoadedModel(model, params, data.width, data.feature_names)
        progress(0.6, "choosing the threshold")
        cut = float(np.quantile(_scores(loaded, x_train), quantile))
        params |= {"decision_threshold": cut, "threshold_quantile": quantile}
        loaded = LoadedModel(model, params, data.width, data.feature_names)
        x_held = data.features[held]
        truth = None if data.labels is None else data.labels[held]
        flagged = _scores(loaded, x_held) >= cut
        metrics: dict[str, Any] = {
            "held_out_rows": len(held),
            "train_rows": len(train),
            "flagged_fraction": float(np.mean(flagged)),
        }
        accuracy = None
        if truth is not None:
            metrics |= _classification(truth, flagged)
            accuracy = metrics["f1"]
        metrics["accuracy"] = accuracy
        progress(0.8, "serializing")
        if method == "isolation_forest":
            return Trained(dump_estimator(model), SKOPS, metrics, params, accuracy, x_held, truth)
        return Trained(dump_hst(model), HST_JSON, metrics, params, accuracy, x_held, truth)

    def load(self, file: bytes, file_format: str, sha256: bytes) -> Any:
        if file_format == SKOPS:
            return load_estimator(file, sha256)
        if file_format == HST_JSON:
            return load_hst(file, sha256)
        raise InvalidInput(f"an anomaly_detector is stored as {SKOPS} or {HST_JSON}")

    def predict(self, loaded: LoadedModel, rows: Matrix) -> list[Any]:
        cut = float(loaded.parameters["decision_threshold"])
        return [{"score": float(s), "anomaly": bool(s >= cut)} for s in _scores(loaded, rows)]

    def accuracy(self, loaded: LoadedModel, rows: Matrix, truth: Matrix | None) -> float | None:
        if truth is None or rows.shape[1] != loaded.width:
            return None
        flagged = _scores(loaded, rows) >= float(loaded.parameters["decision_threshold"])
        f1: float = _classification(truth, flagged)["f1"]
        return f1


def _fit_hst(rows: Matrix, chosen: Mapping[str, Any]) -> tuple[HalfSpaceTrees, dict[str, Any]]:
    """HalfSpaceTrees learnt row by row; its limits are the training rows' range per feature."""
    low, high = rows.min(axis=0), rows.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    limits: dict[Hashable, tuple[float, float]] = {
        i: (float(low[i] - 0.1 * span[i]), float(high[i] + 0.1 * span[i]))
        for i in range(rows.shape[1])
    }
    window = chosen.get("window_size", max(10, min(250, len(rows) // 4)))
    trees, height = chosen.get("n_estimators", 25), chosen.get("height", 8)
    model = HalfSpaceTrees(
        n_trees=trees, height=height, window_size=window, limits=limits, seed=_SEED
    )
    for row in rows:
        model.learn_one(dict(enumerate(row.tolist())))  # type: ignore[no-untyped-call]
    params = {"method": "half_space_trees", "n_estimators": trees, "height": height,
              "window_size": window}  # fmt: skip
    return model, params


def _scores(loaded: LoadedModel, rows: Matrix) -> Matrix:
    """Higher is more anomalous."""
    if loaded.parameters.get("method") == "half_space_trees":
        return np.array([loaded.model.score_one(dict(enumerate(r.tolist()))) for r in rows])
    scores: Matrix = -loaded.model.score_samples(rows)
    return scores


def _classification(truth: Matrix, flagged: Any) -> dict[str, float]:
    actual = truth.astype(bool)
    hits = float(np.sum(flagged & actual))
    precision = hits / max(float(np.sum(flagged)), 1.0)
    recall = hits / max(float(np.sum(actual)), 1.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}

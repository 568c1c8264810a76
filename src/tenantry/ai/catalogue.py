"""The model types by name: what ``train_model(model_type, ...)`` and the routes accept.

``performance_predictor`` and ``anomaly_detector`` (:mod:`tenantry.ai.kinds`) and
``load_forecasting`` (:mod:`tenantry.ai.forecasting`); :func:`register_model_type` adds one.
"""

from __future__ import annotations

from tenantry.ai.forecasting import LoadForecasting
from tenantry.ai.kinds import AnomalyDetector, ModelKind, PerformancePredictor
from tenantry.errors import InvalidInput

__all__ = ["MODEL_TYPES", "model_kind", "register_model_type"]

#: Model type name -> its kind. The order is the API's (its first is the OpenAPI example's).
MODEL_TYPES: dict[str, ModelKind] = {
    "performance_predictor": PerformancePredictor(),
    "anomaly_detector": AnomalyDetector(),
    "load_forecasting": LoadForecasting(),
}


def register_model_type(name: str, kind: ModelKind) -> None:
    """Make ``name`` trainable with ``kind``."""
    MODEL_TYPES[name] = kind


def model_kind(name: str) -> ModelKind:
    kind = MODEL_TYPES.get(name)
    if kind is None:
        raise InvalidInput(
            f"unknown model type {InvalidInput.excerpt(name)}: use {', '.join(MODEL_TYPES)}"
        )
    return kind

"""AI: each tenant's model registry (:class:`MLModelManager`), the documents' :class:`AIManager`
(``train_model``, ``predict``, promotion by accuracy), its model types, training jobs and
micro-batched predictions, and the load forecaster (:func:`fit`, the default :func:`fit_load`,
:func:`backtest`) with the load traces it is measured on. Model files are skops or JSON,
hash-checked: nothing is unpickled."""

from __future__ import annotations

from tenantry.ai.auto import (
    AUTO_TRAINER,
    AutoTrainer,
    AutoTraining,
    AutoTrainingRound,
    AutoTrainingSkip,
)
from tenantry.ai.backtest import Backtest, backtest, seasonal_naive
from tenantry.ai.batching import MicroBatcher
from tenantry.ai.catalogue import MODEL_TYPES, register_model_type
from tenantry.ai.data import TrainingData
from tenantry.ai.ets import FittedForecaster, Forecast
from tenantry.ai.files import ALLOWED_TYPES
from tenantry.ai.forecast import fit, fit_load, forecaster_from_params
from tenantry.ai.jobs import JobStatus, JobView, TrainingJobs
from tenantry.ai.kinds import ModelKind
from tenantry.ai.manager import AIManager
from tenantry.ai.mstl import MultiSeasonalForecaster
from tenantry.ai.registry import MAX_FILE_BYTES, MAX_MODELS, MAX_VERSIONS_KEPT, MLModelManager
from tenantry.ai.schemas import ModelVersionView, ModelView, Prediction, TrainingResult
from tenantry.ai.traces import TEST_TRACES, TRACES, TraceSpec, generate_trace

__all__ = [
    "ALLOWED_TYPES",
    "AUTO_TRAINER",
    "MAX_FILE_BYTES",
    "MAX_MODELS",
    "MAX_VERSIONS_KEPT",
    "MODEL_TYPES",
    "TEST_TRACES",
    "TRACES",
    "AIManager",
    "AutoTrainer",
    "AutoTraining",
    "AutoTrainingRound",
    "AutoTrainingSkip",
    "Backtest",
    "FittedForecaster",
    "Forecast",
    "JobStatus",
    "JobView",
    "MLModelManager",
    "MicroBatcher",
    "ModelKind",
    "ModelVersionView",
    "ModelView",
    "MultiSeasonalForecaster",
    "Prediction",
    "TraceSpec",
    "TrainingData",
    "TrainingJobs",
    "TrainingResult",
    "backtest",
    "fit",
    "fit_load",
    "forecaster_from_params",
    "generate_trace",
    "register_model_type",
    "seasonal_naive",
]

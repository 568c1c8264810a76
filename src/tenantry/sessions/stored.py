"""The session behaviour model in each tenant's AI registry (:mod:`tenantry.ai`): its model type,
its file, and what a trained model is stored with.

The behaviour learner stores each model it trains as the next version of the tenant's model
``session_behaviour`` (of the type ``session_behaviour``, which this module registers with
:func:`tenantry.ai.register_model_type`) and makes it ``champion`` when it adopts it; every node
scores with the champion. The type is trained only by the learner, from the tenant's sessions:
``train_model`` refuses it. Asked through the registry (``predict``), it answers the model's own
part of a session's score: ``{"score", "forest", "z"}`` per row of
:data:`~tenantry.sessions.behaviour.FEATURE_NAMES` values.

The file (format ``tenantry-behaviour``) is :meth:`FittedModel.encode`'s output in one piece: the
header's length (4 bytes, big-endian), the header as JSON, then the zlib block of numbers. It is
loaded only after its SHA-256 matches the one stored with the version (constant time), its
header is at most 64 KiB, and :meth:`FittedModel.decode` accepted it (sizes checked before
anything is allocated, a forest that could loop refused): never a pickle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import numpy as np
from sqlalchemy.engine import RowMapping

from tenantry.ai.catalogue import register_model_type
from tenantry.ai.data import Matrix, TrainingData
from tenantry.ai.files import verify
from tenantry.ai.kinds import LoadedModel, Progress, Trained
from tenantry.errors import InvalidInput, ModelFileRejected
from tenantry.sessions.behaviour import FEATURE_NAMES, BehaviourModel, CorruptModel, FittedModel
from tenantry.sessions.schemas import BEHAVIOUR_MODEL

__all__ = ["FILE_FORMAT", "SessionBehaviourKind", "dump", "load", "register", "trained"]

FILE_FORMAT: Final = "tenantry-behaviour"
_MAX_HEADER: Final = 64 * 1024


def dump(fitted: FittedModel) -> bytes:
    """``fitted`` as one file (see the module docstring)."""
    meta, arrays = fitted.encode()
    header = json.dumps(meta, separators=(",", ":")).encode()
    return len(header).to_bytes(4, "big") + header + arrays


def load(file: bytes, sha256: bytes) -> FittedModel:
    """The model of a ``tenantry-behaviour`` file whose SHA-256 is ``sha256``;
    :class:`~tenantry.errors.ModelFileRejected` for anything else."""
    verify(file, sha256)
    size = int.from_bytes(file[:4], "big")
    if len(file) < 4 or not 2 <= size <= min(_MAX_HEADER, len(file) - 4):
        raise ModelFileRejected("the behaviour model's header is missing or too large")
    try:
        meta = json.loads(file[4 : 4 + size])
        return FittedModel.decode(meta, file[4 + size :])
    except (ValueError, CorruptModel) as exc:  # JSONDecodeError is a ValueError
        raise ModelFileRejected(f"the behaviour model was refused: {exc}") from None


def trained(
    fitted: FittedModel, rows: Sequence[RowMapping], model: BehaviourModel, tenant_seed: int
) -> tuple[Trained, dict[str, Any]]:
    """What the registry stores of a model trained on the samples ``rows`` (``sample_id``,
    ``session_id``, ``features``, ``learned_at``, oldest first): the file, its metrics (the
    training set's size and the calibration: the detectors' training score quantiles),
    parameters, and its lineage (which samples: their range, time range, count, digests)."""
    vectors = np.asarray([list(r.features) for r in rows], dtype=np.float64)
    learned: list[datetime] = [r.learned_at for r in rows]
    data = TrainingData(
        vectors,
        feature_names=FEATURE_NAMES,
        source="sessions",
        start=min(learned),
        end=max(learned),
        rows=f"behaviour_samples {int(rows[0].sample_id)}..{int(rows[-1].sample_id)}",
    )
    sessions = hashlib.sha256("\n".join(str(r.session_id) for r in rows).encode())
    lineage = data.lineage() | {
        "through": int(rows[-1].sample_id),
        "sessions": len(rows),
        "sessions_sha256": sessions.hexdigest(),
    }
    forest, z = fitted.forest_train, fitted.z_train
    metrics: dict[str, Any] = {
        "samples": len(rows),
        "forest_score_p50": float(np.quantile(forest, 0.5)),
        "forest_score_p99": float(np.quantile(forest, 0.99)),
        "z_max_p50": float(np.quantile(z, 0.5)),
        "z_max_p99": float(np.quantile(z, 0.99)),
        "accuracy": None,
    }
    parameters = {
        "trees": model.trees,
        "seed": tenant_seed,
        "min_history": model.min_history,
        "refit_every": model.refit_every,
        "max_samples": model.max_samples,
    }
    empty = np.zeros((0, len(FEATURE_NAMES)))
    return Trained(dump(fitted), FILE_FORMAT, metrics, parameters, None, empty, None), lineage


class SessionBehaviourKind:
    """The ``session_behaviour`` model type (see the module docstring)."""

    def _refuse(self) -> InvalidInput:
        return InvalidInput(
            "session_behaviour models are trained by the behaviour learner from the tenant's "
            "sessions, not by train_model"
        )

    def check(self, data: TrainingData, parameters: Mapping[str, Any]) -> None:
        raise self._refuse()

    def train(
        self, data: TrainingData, parameters: Mapping[str, Any], *, quantile: float,
        progress: Progress,
    ) -> Trained:  # fmt: skip
        raise self._refuse()

    def load(self, file: bytes, file_format: str, sha256: bytes) -> Any:
        if file_format != FILE_FORMAT:
            raise ModelFileRejected(f"a session_behaviour model is stored as {FILE_FORMAT}")
        return load(file, sha256)

    def predict(self, loaded: LoadedModel, rows: Matrix) -> list[Any]:
        fitted: FittedModel = loaded.model
        out: list[Any] = []
        for row in rows:
            score, z = fitted.calibrated(row)
            forest = float(fitted.forest(row)[0])
            out.append({"score": round(score, 4), "forest": forest, "z": float(z.max())})
        return out

    def accuracy(self, loaded: LoadedModel, rows: Matrix, truth: Matrix | None) -> float | None:
        return None  # unlabelled: never promoted by train_model's rule (the learner adopts it)


def register() -> None:
    """Make ``session_behaviour`` a model type of the registry (done on import; idempotent)."""
    register_model_type(BEHAVIOUR_MODEL, SessionBehaviourKind())


register()

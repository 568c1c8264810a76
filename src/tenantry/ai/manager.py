"""AIManager: the documents' ``train_model(model_type, training_data)`` and
``predict(model_name, input_data)``, per tenant, over the registry.

Training (in a worker thread) makes a new version, the ``challenger``. It becomes ``champion``
only when its accuracy on its held-out rows (see :mod:`tenantry.ai.kinds` for what accuracy is
per type) reaches ``PREDICTION_ACCURACY_TARGET`` **and** beats the champion's accuracy on the
same rows; a champion that cannot be measured on them (other features, no labels) is not
replaced automatically (``promote`` does it by hand). A model's name defaults to its type's.

``predict`` asks the champion (or an alias or version given), loaded from its verified file and
cached per (tenant, model, version) (at most ``cache_size``); which version an alias names is
remembered for ``alias_ttl`` seconds (a promotion in this process is seen at once). Concurrent
predictions of one version are micro-batched (:class:`~tenantry.ai.batching.MicroBatcher`).

``ML_MODELS_ENABLED`` off: every call raises :class:`~tenantry.errors.FeatureDisabled`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from tenantry.ai.batching import MicroBatcher
from tenantry.ai.catalogue import model_kind
from tenantry.ai.data import TrainingData, input_rows
from tenantry.ai.kinds import LoadedModel, Progress, Trained
from tenantry.ai.registry import MLModelManager, validate_model_name
from tenantry.ai.schemas import ModelView, Prediction, TrainingResult
from tenantry.config import Settings, load_settings
from tenantry.context import current_tenant, validate_tenant_id
from tenantry.db.changes import ChangeLog
from tenantry.db.engine import Database
from tenantry.errors import Conflict, FeatureDisabled, InvalidInput, NotFound, TenantContextError

__all__ = ["AIManager"]


def _quiet(fraction: float, stage: str) -> None:
    del fraction, stage


def _tenant(tenant_id: str | None) -> str:
    tenant = tenant_id if tenant_id is not None else current_tenant()
    if tenant is None:
        raise TenantContextError("give tenant_id or call inside tenant_scope(...)")
    return validate_tenant_id(tenant)


class AIManager:
    """See the module docstring."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        settings: Settings | None = None,
        registry: MLModelManager | None = None,
        audit: ChangeLog | None = None,
        batcher: MicroBatcher | None = None,
        cache_size: int = 64,
        alias_ttl: float = 1.0,
    ) -> None:
        self.settings = settings or load_settings()
        self.registry = registry or MLModelManager(database, audit=audit)
        self.batcher = batcher or MicroBatcher()
        self._cache: OrderedDict[tuple[str, str, int], tuple[str, LoadedModel]] = OrderedDict()
        self._cache_size = cache_size
        self._aliases: dict[tuple[str, str, str], tuple[int, float]] = {}
        self._alias_ttl = alias_ttl

    @property
    def enabled(self) -> bool:
        return self.settings.ml_models_enabled

    def check_enabled(self) -> None:
        if not self.enabled:
            raise FeatureDisabled("machine-learning models are off (ML_MODELS_ENABLED=false)")

    def check_training(
        self, model_type: str, training_data: TrainingData | Mapping[str, Any],
        parameters: Mapping[str, Any] | None = None,
    ) -> TrainingData:  # fmt: skip
        """The checked data, or the error a training would end with, before any work."""
        self.check_enabled()
        data = TrainingData.of(training_data)
        model_kind(model_type).check(data, parameters or {})
        return data

    async def train_model(
        self,
        model_type: str,
        training_data: TrainingData | Mapping[str, Any],
        *,
        name: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        tenant_id: str | None = None,
        actor: str | None = None,
        progress: Progress = _quiet,
    ) -> TrainingResult:
        """Train a new version of ``name`` (default: ``model_type``) on ``training_data``, store
        it as the challenger and promote it if it earns it (see the module docstring)."""
        tenant = _tenant(tenant_id)
        name = validate_model_name(name or model_type)
        params = dict(parameters or {})
        data = self.check_training(model_type, training_data, params)
        kind = model_kind(model_type)
        quantile = self.settings.anomaly_detection_threshold
        trained: Trained = await asyncio.to_thread(
            kind.train, data, params, quantile=quantile, progress=progress
        )
        progress(0.85, "measuring the champion")
        champion, champion_accuracy = await self._champion_accuracy(tenant, name, trained)
        target = self.settings.prediction_accuracy_target
        promote, reason = _decide(trained.accuracy, champion, champion_accuracy, target)
        progress(0.9, "storing")
        version, promoted = await self.registry.add_version(
            tenant, name, model_type, trained, data.lineage(), actor=actor,
            promote_over=champion if promote else False,
        )  # fmt: skip
        if promote and not promoted:
            reason = "the champion changed during the training: left as challenger"
        self._forget_aliases(tenant, name)
        progress(1.0, "done")
        return TrainingResult(
            name, model_type, version, trained.metrics, trained.accuracy, champion,
            champion_accuracy, promoted, reason,
        )  # fmt: skip

    async def _champion_accuracy(
        self, tenant: str, name: str, trained: Trained
    ) -> tuple[int | None, float | None]:
        try:
            version = await self.registry.resolve(tenant, name, "champion")
        except (NotFound, Conflict):  # no model yet, or no champion: nothing to beat
            return None, None
        model_type, loaded = await self._loaded(tenant, name, version)
        accuracy = await asyncio.to_thread(
            model_kind(model_type).accuracy, loaded, trained.holdout, trained.holdout_truth
        )
        return version, accuracy

    async def predict(
        self,
        model_name: str,
        input_data: Any,
        *,
        tenant_id: str | None = None,
        alias: str = "champion",
        version: int | None = None,
    ) -> Prediction:
        """The predictions of ``model_name``'s ``alias`` (or ``version``) for ``input_data``:
        one row (numbers, or a mapping of feature names) or a list of rows."""
        self.check_enabled()
        tenant = _tenant(tenant_id)
        validate_model_name(model_name)
        if version is None:
            version = await self._resolve(tenant, model_name, alias)
        elif isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidInput("version is a positive integer")
        model_type, loaded = await self._loaded(tenant, model_name, version)
        kind = model_kind(model_type)
        rows, single = input_rows(input_data, loaded.feature_names, loaded.width)
        outputs = await self.batcher.submit(
            (tenant, model_name, version), rows, lambda x: kind.predict(loaded, x)
        )
        return Prediction(model_name, version, outputs[:1] if single else outputs)

    async def promote(
        self, model_name: str, version: int | None = None, *, tenant_id: str | None = None,
        actor: str | None = None,
    ) -> ModelView:  # fmt: skip
        """Make ``version`` (default: the latest kept one) the champion of ``model_name``."""
        self.check_enabled()
        tenant = _tenant(tenant_id)
        if version is None:
            found = await self.registry.model(tenant, model_name)
            version = found.versions[0].version
        view = await self.registry.set_alias(tenant, model_name, "champion", version, actor=actor)
        self._forget_aliases(tenant, model_name)
        return view

    async def models(self, *, tenant_id: str | None = None) -> list[ModelView]:
        self.check_enabled()
        return await self.registry.models(_tenant(tenant_id))

    async def _resolve(self, tenant: str, name: str, alias: str) -> int:
        key = (tenant, name, alias)
        known = self._aliases.get(key)
        now = time.monotonic()
        if known is not None and known[1] > now:
            return known[0]
        version = await self.registry.resolve(tenant, name, alias)
        if len(self._aliases) >= 4 * self._cache_size:
            self._aliases.clear()
        self._aliases[key] = (version, now + self._alias_ttl)
        return version

    def _forget_aliases(self, tenant: str, name: str) -> None:
        for alias in ("champion", "challenger"):
            self._aliases.pop((tenant, name, alias), None)

    async def _loaded(self, tenant: str, name: str, version: int) -> tuple[str, LoadedModel]:
        key = (tenant, name, version)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        stored = await self.registry.version_file(tenant, name, version)
        kind = model_kind(stored.model_type)
        model = await asyncio.to_thread(kind.load, stored.file, stored.file_format, stored.sha256)
        names = tuple(stored.lineage.get("feature_names") or ())
        width = int(stored.lineage.get("feature_count") or 0)
        loaded = LoadedModel(model, stored.parameters, width, names)
        self._cache[key] = (stored.model_type, loaded)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return stored.model_type, loaded


def _decide(
    accuracy: float | None, champion: int | None, champion_accuracy: float | None, target: float
) -> tuple[bool, str]:
    if accuracy is None:
        return False, "its accuracy cannot be measured (no labels): promote it by hand"
    if accuracy < target:
        return False, f"accuracy {accuracy:.3f} is below the target {target:.3f}"
    if champion is None:
        return True, f"accuracy {accuracy:.3f} meets the target {target:.3f}; no champion"
    if champion_accuracy is None:
        return False, (
            f"champion v{champion} cannot be measured on the new held-out rows: promote by hand"
        )
    if accuracy <= champion_accuracy:
        return False, (
            f"accuracy {accuracy:.3f} does not beat champion v{champion}'s "
            f"{champion_accuracy:.3f} on the same held-out rows"
        )
    return True, (
        f"accuracy {accuracy:.3f} beats champion v{champion}'s {champion_accuracy:.3f} and meets "
        f"the target {target:.3f}"
    )

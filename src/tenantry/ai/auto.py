"""Automatic training (``AUTO_TRAINING_ENABLED``): each active tenant's ``load_forecasting``
model retrained in the background from the service's own data.

- **What.** A tenant's hourly request load, the series the load planner reads
  (:func:`tenantry.monitoring.hourly_load`: the count of its ``http_request_seconds`` per hour,
  as requests per second), over the last :data:`HISTORY_HOURS` whole hours from its first
  request in them, trains the model ``load_forecasting`` (daily period, the last day held out).
  Nothing else is trained automatically.
- **The same path as a caller's.** A training job (:class:`~tenantry.ai.jobs.TrainingJobs`, so a
  tenant's manual and automatic trainings queue behind one another), a new immutable version,
  the ``challenger``, whose lineage names the series, its hours and ``automatic: true``, made
  ``champion`` only when it reaches ``PREDICTION_ACCURACY_TARGET`` and beats the champion on the
  same held-out hours (:meth:`~tenantry.ai.AIManager.train_model`'s rule). The registry audits
  it on the tenant's log, by the actor :data:`AUTO_TRAINER`.
- **When.** A tenant is *due* when no automatic version of its model is younger than
  ``TENANTRY_AUTO_TRAINING_INTERVAL`` (a day); a round (every :data:`ROUND_EVERY` seconds, or
  the interval if shorter) goes through the active tenants in id order, starting after the one
  the last round stopped at (round-robin), trains the due ones one at a time, and stops after
  ``TENANTRY_AUTO_TRAINING_TENANTS`` trainings or :data:`CHECKS_PER_TRAINING` times as many
  tenants looked at. A tenant found not due, or without enough data, is not looked at again by
  this process until it may be due.
- **Skipped, with a counted reason** (:class:`AutoTrainingSkip`): not active (suspended,
  archived...), not due, busy (another process trains it, or its job queue is full), no
  requests in the window, a history shorter than :data:`MIN_HOURS`, a training that failed.
- **One process at a time per tenant.** The training of a tenant holds the advisory lock
  ``tenantry.ai.auto:<tenant>`` (:func:`tenantry.db.locks.advisory_lock`) from the due check to
  the stored version: a second process or node finds it taken (busy), or, after, finds the
  tenant trained (not due).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from tenantry.ai.data import TrainingData
from tenantry.ai.jobs import JobStatus, JobView, TrainingJobs
from tenantry.ai.registry import MLModelManager
from tenantry.config import Settings
from tenantry.context import validate_tenant_id
from tenantry.db.default import UsesDatabase
from tenantry.db.engine import Database
from tenantry.db.locks import advisory_lock
from tenantry.errors import BulkheadFull, NotFound, TenantryError
from tenantry.logging import get_logger
from tenantry.monitoring.load import HOUR, REQUESTS_METRIC, hourly_load
from tenantry.monitoring.manager import MonitoringManager
from tenantry.rounds import TenantRounds
from tenantry.tenants.manager import TenantRegistry
from tenantry.tenants.schemas import TenantStatus

__all__ = [
    "AUTO_TRAINER",
    "CHECKS_PER_TRAINING",
    "HISTORY_HOURS",
    "MIN_HOURS",
    "ROUND_EVERY",
    "AutoTrainer",
    "AutoTraining",
    "AutoTrainingRound",
    "AutoTrainingSkip",
]

#: The actor of the automatic trainings in the registry and the audit log.
AUTO_TRAINER: Final = "tenantry.ai.auto"
#: The hours of load a training reads, and the fewest (from the tenant's first request in them).
HISTORY_HOURS: Final = 24 * 14
MIN_HOURS: Final = 24 * 3
#: Seconds between two rounds (at most): a tenant becomes due at any time.
ROUND_EVERY: Final = 600.0
#: Tenants a round may look at per training it may do.
CHECKS_PER_TRAINING: Final = 10
_MODEL: Final = "load_forecasting"
_PARAMETERS: Final = {"period": 24, "horizon": 24}
_log = get_logger("tenantry.ai")


class AutoTrainingSkip(StrEnum):
    """Why a tenant was not trained."""

    NOT_ACTIVE = "not_active"
    NOT_DUE = "not_due"
    BUSY = "busy"
    NO_REQUESTS = "no_requests"
    SHORT_HISTORY = "short_history"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class AutoTraining:
    """One tenant looked at: its training job (finished), or why it was skipped."""

    tenant_id: str
    model_name: str
    job: JobView | None = None
    skipped: AutoTrainingSkip | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AutoTrainingRound:
    """A round: the tenants trained (their finished jobs) and the skipped ones per reason."""

    trained: tuple[AutoTraining, ...] = ()
    skipped: Counter[str] = field(default_factory=Counter)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AutoTrainer(UsesDatabase, TenantRounds[AutoTraining]):
    """Retrains the tenants' models from the service's data; see the module docstring.

    ``jobs`` trains (its AI manager's settings say whether this runs at all, the interval and
    the trainings a round); ``monitoring`` holds the series; ``clock`` is the time the hours and
    the due checks are counted from."""

    work = "automatic training"

    def __init__(
        self,
        jobs: TrainingJobs,
        monitoring: MonitoringManager,
        database: Database | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._database = database
        self.jobs, self.monitoring, self.clock = jobs, monitoring, clock
        self.settings: Settings = jobs.ai.settings
        self.every = timedelta(seconds=self.settings.auto_training_interval)
        self.per_round = self.settings.auto_training_tenants
        super().__init__(interval=min(ROUND_EVERY, self.settings.auto_training_interval))
        self._registry: MLModelManager = jobs.ai.registry
        self._cursor = ""  # the last tenant a round looked at
        self._not_before: dict[str, datetime] = {}  # tenants this process need not look at

    @property
    def enabled(self) -> bool:
        return self.settings.ml_models_enabled and self.settings.auto_training_enabled

    async def start(self) -> None:
        """Start the rounds, when ``ML_MODELS_ENABLED`` and ``AUTO_TRAINING_ENABLED`` are on."""
        if self.enabled:
            await super().start()

    async def run_once(self) -> list[AutoTraining]:
        return list((await self.run_round()).trained)

    async def run_round(self) -> AutoTrainingRound:
        """One round (see the module docstring); nothing when off."""
        done = AutoTrainingRound()
        if not self.enabled:
            return done
        tenants = await TenantRegistry(await self._db()).active_ids()  # in id order
        order = [t for t in tenants if t > self._cursor] + [t for t in tenants if t <= self._cursor]
        trained: list[AutoTraining] = []
        now = self.clock()
        looked = 0
        for tenant_id in order:
            if len(trained) >= self.per_round or looked >= CHECKS_PER_TRAINING * self.per_round:
                break
            if self._not_before.get(tenant_id, now) > now:
                done.skipped[AutoTrainingSkip.NOT_DUE.value] += 1
                continue
            looked += 1
            self._cursor = tenant_id
            try:
                outcome = await self.train(tenant_id)
            except TenantryError as exc:  # one tenant's failure must not stop the round
                _log.warning("automatic training failed", tenant=tenant_id, error=exc.detail)
                self._not_before[tenant_id] = now + self.every
                done.skipped[AutoTrainingSkip.FAILED.value] += 1
                continue
            except Exception:  # noqa: BLE001 - nor a bug met in one tenant's data
                _log.exception("automatic training failed", tenant=tenant_id)
                self._not_before[tenant_id] = now + self.every
                done.skipped[AutoTrainingSkip.FAILED.value] += 1
                continue
            if outcome.skipped is None:
                trained.append(outcome)
            else:
                done.skipped[outcome.skipped.value] += 1
        return replace(done, trained=tuple(trained))

    async def train(self, tenant_id: str) -> AutoTraining:
        """Train ``tenant_id``'s model now if it is active, due, has the data and no other
        process is training it; the finished job, or why not."""
        validate_tenant_id(tenant_id)
        db = await self._db()
        if (await TenantRegistry(db).get(tenant_id)).status is not TenantStatus.ACTIVE:
            return _skipped(tenant_id, AutoTrainingSkip.NOT_ACTIVE)
        now = self.clock()
        # most tenants stop here, without the lock's connection
        if (not_due := await self._not_due(tenant_id, now)) is not None:
            return not_due
        async with advisory_lock(db, f"tenantry.ai.auto:{tenant_id}") as held:
            if not held:
                return _skipped(tenant_id, AutoTrainingSkip.BUSY, "another process trains it")
            return await self._train_held(tenant_id, now)

    async def _not_due(self, tenant_id: str, now: datetime) -> AutoTraining | None:
        """Why ``tenant_id`` is not due (an automatic version younger than the interval), or
        None when it is."""
        last = await self._last_automatic(tenant_id)
        if last is None or now - last >= self.every:
            return None
        self._not_before[tenant_id] = last + self.every
        return _skipped(tenant_id, AutoTrainingSkip.NOT_DUE, f"trained at {last.isoformat()}")

    async def _train_held(self, tenant_id: str, now: datetime) -> AutoTraining:
        """:meth:`train` under the tenant's lock: due still (another process may have trained
        it since the first look), then on its data."""
        if (not_due := await self._not_due(tenant_id, now)) is not None:
            return not_due
        data = await self._data(tenant_id, now)
        if not isinstance(data, TrainingData):
            self._not_before[tenant_id] = now + self.every
            return _skipped(tenant_id, *data)
        try:
            job = self.jobs.submit(
                tenant_id, _MODEL, data, parameters=_PARAMETERS, actor=AUTO_TRAINER
            )
        except BulkheadFull as exc:
            return _skipped(tenant_id, AutoTrainingSkip.BUSY, exc.detail)
        job = await self.jobs.wait(tenant_id, job.id)
        self._not_before[tenant_id] = now + self.every
        if job.status is not JobStatus.SUCCEEDED:
            _log.warning("automatic training failed", tenant=tenant_id, error=job.error)
            return AutoTraining(tenant_id, _MODEL, job, AutoTrainingSkip.FAILED, job.error or "")
        result = job.result
        if result is not None:
            _log.info(
                "automatic training", tenant=tenant_id, model=_MODEL, version=result.version,
                promoted=result.promoted, reason=result.reason,
            )  # fmt: skip
        return AutoTraining(tenant_id, _MODEL, job, detail=result.reason if result else "")

    async def _last_automatic(self, tenant_id: str) -> datetime | None:
        try:
            model = await self._registry.model(tenant_id, _MODEL)
        except NotFound:
            return None
        times = [v.created_at for v in model.versions if v.lineage.get("automatic") is True]
        return max(times, default=None)

    async def _data(
        self, tenant_id: str, now: datetime
    ) -> TrainingData | tuple[AutoTrainingSkip, str]:
        """The tenant's load from its first request in the window to the last whole hour, or
        why there is not enough of it."""
        end = now.replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(hours=HISTORY_HOURS)
        series = await hourly_load(self.monitoring, start, end, tenant_id)
        first = next((i for i, v in enumerate(series) if v > 0), None)
        if first is None:
            return AutoTrainingSkip.NO_REQUESTS, f"no requests in the last {HISTORY_HOURS} hours"
        series = series[first:]
        if len(series) < MIN_HOURS:
            return (
                AutoTrainingSkip.SHORT_HISTORY,
                f"{len(series)} hours since the first request: {MIN_HOURS} are needed",
            )
        begin = start + timedelta(hours=first)
        data = TrainingData.of(
            {
                "features": [[v] for v in series],
                "source": f"tenantry.monitoring: {REQUESTS_METRIC} count per hour / {HOUR}",
                "start": begin,
                "end": end,
                "rows": f"requests per second, hourly, {len(series)} hours",
            }
        )
        return replace(data, automatic=True)


def _skipped(tenant_id: str, reason: AutoTrainingSkip, detail: str = "") -> AutoTraining:
    return AutoTraining(tenant_id, _MODEL, skipped=reason, detail=detail)

"""Automatic training on PostgreSQL: each tenant's request series, recorded through the
monitoring manager, retrains its load_forecasting model in the scheduler's rounds, promoted by
the same rule as a caller's training; tenants without data, suspended, or trained by another
process are skipped; off by default.

The module has a database of its own: a round goes through every active tenant, so the tenants
of other tests must not be in it."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from tenantry.ai import (
    AUTO_TRAINER,
    AIManager,
    AutoTrainer,
    AutoTrainingSkip,
    JobStatus,
    TrainingData,
    TrainingJobs,
)
from tenantry.api import create_app
from tenantry.audit.trail import trail_for
from tenantry.config import Settings, load_settings
from tenantry.db.embedded import EmbeddedPostgres
from tenantry.db.engine import Database
from tenantry.db.locks import advisory_lock
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import InvalidInput, NotFound
from tenantry.monitoring import MonitoringManager
from tenantry.monitoring.aggregate import Aggregator
from tenantry.tenants import TenantRegistry
from tests.conftest import NewTenant, embedded_settings, started_runtime

HOUR = 3600
LABELS = {"route": "/x", "method": "GET", "status": "2xx"}
#: The last whole hour before the tests started: the series end there (and after, when a test
#: looks from later on).
NOW = datetime.now(UTC)
LAST_HOUR = int(NOW.timestamp()) // HOUR


def daily(hour: int) -> int:
    """Requests in an absolute hour: 36 at night, 108 in the afternoon, the same every day."""
    return round(72 + 36 * math.sin(2 * math.pi * (hour % 24 - 9) / 24))


def noisy(hour: int) -> int:
    """Requests with no pattern at all."""
    return int(np.random.default_rng(hour).integers(1, 200))


async def seed(
    db: Database, tenant: str, *, days: float, until: int = LAST_HOUR, count: Callable[[int], int]
) -> None:
    """The tenant's requests in the ``days`` of whole hours before the hour ``until``."""
    clock = [0.0]
    monitoring = MonitoringManager(db, aggregator=Aggregator(clock=lambda: clock[0]))
    first = until - round(days * 24)
    for hour in range(first, until):
        clock[0] = hour * HOUR + 60.0
        for _ in range(count(hour)):
            monitoring.record("http_request_seconds", 0.01, LABELS, tenant)
        if (hour - first) % 24 == 23:
            await monitoring.flush(everything=True)
    await monitoring.flush(everything=True)


@pytest.fixture(scope="module")
async def auto_settings(embedded_server: EmbeddedPostgres) -> Settings:
    settings = await embedded_settings(embedded_server, "autotrain")
    await (await started_runtime(settings)).stop()
    return settings


@pytest.fixture(scope="module")
async def auto_db(auto_settings: Settings) -> AsyncIterator[Database]:
    runtime = DatabaseRuntime(auto_settings)
    await runtime.start()
    database = runtime.open_database()
    yield database
    await database.dispose()
    await runtime.stop()


def trainer(
    db: Database, *, at: datetime | None = None, **settings: Any
) -> tuple[AutoTrainer, AIManager]:
    """A process's trainer (its own AI manager, jobs and monitoring), on by default."""
    chosen = {"ml_models_enabled": True, "auto_training_enabled": True} | settings
    ai = AIManager(db, settings=load_settings(**chosen))
    clock = (lambda: at) if at is not None else (lambda: datetime.now(UTC))
    return AutoTrainer(TrainingJobs(ai), MonitoringManager(db), db, clock=clock), ai


async def test_a_round_trains_each_tenants_load_from_its_requests(
    auto_db: Database, new_tenant: NewTenant
) -> None:
    busy = (await new_tenant("auto", auto_db)).id
    await seed(auto_db, busy, days=7, count=daily)
    quiet = (await new_tenant("auto", auto_db)).id  # no requests at all
    young = (await new_tenant("auto", auto_db)).id  # two days: too short a history
    await seed(auto_db, young, days=2, count=daily)
    auto, ai = trainer(auto_db)
    done = await auto.run_round()
    mine = {t.tenant_id: t for t in done.trained}
    assert set(mine) & {quiet, young} == set()
    assert done.skipped[AutoTrainingSkip.NO_REQUESTS] >= 1
    assert done.skipped[AutoTrainingSkip.SHORT_HISTORY] >= 1
    job = mine[busy].job
    assert job is not None
    assert job.status is JobStatus.SUCCEEDED
    assert job.result is not None
    # a clean daily swing: accuracy above the 0.85 target, no champion yet: promoted
    assert (job.result.version, job.result.promoted) == (1, True), job.result.reason
    assert job.result.accuracy is not None
    assert job.result.accuracy > 0.85
    model = (await ai.models(tenant_id=busy))[0]
    assert (model.name, model.model_type, model.aliases) == (
        "load_forecasting",
        "load_forecasting",
        {"champion": 1},
    )
    version = model.versions[0]
    assert version.trained_by == AUTO_TRAINER
    lineage = version.lineage
    assert lineage["automatic"] is True
    assert "http_request_seconds" in lineage["source"]
    assert lineage["row_count"] == 7 * 24
    end = datetime.fromtimestamp(LAST_HOUR * HOUR, UTC)
    assert datetime.fromisoformat(lineage["end"]) == end
    assert datetime.fromisoformat(lineage["start"]) == end - timedelta(days=7)
    # audited on the tenant's log like a manual training, by the trainer
    entries = await trail_for(auto_db).audit_log.entries(busy, 0, 200)
    audited = [(e.entry.action, e.entry.actor) for e in entries if e.entry is not None]
    assert ("ai.model.version.create", AUTO_TRAINER) in audited
    assert ("ai.model.alias", AUTO_TRAINER) in audited
    # the champion forecasts the next hour's requests per second
    ahead = await ai.predict("load_forecasting", [1], tenant_id=busy)
    assert ahead.outputs[0] == pytest.approx(daily(LAST_HOUR) / HOUR, rel=0.1)
    for tenant in (quiet, young):
        with pytest.raises(NotFound):
            await ai.registry.model(tenant, "load_forecasting")
    # trained within the interval: not again, in this process or another
    again = await auto.run_round()
    assert busy not in {t.tenant_id for t in again.trained}
    other, _ = trainer(auto_db)
    skipped = await other.train(busy)
    assert skipped.skipped is AutoTrainingSkip.NOT_DUE
    # a day later, with a day more of requests: a new version, promoted only by the rule
    await seed(auto_db, busy, days=25 / 24, until=LAST_HOUR + 25, count=daily)
    later, _ = trainer(auto_db, at=NOW + timedelta(hours=25))
    second = await later.train(busy)
    assert second.job is not None
    result = second.job.result
    assert result is not None
    assert (result.version, result.champion_version) == (2, 1)
    assert result.accuracy is not None
    assert result.champion_accuracy is not None
    beats = result.accuracy >= 0.85 and result.accuracy > result.champion_accuracy
    assert result.promoted is beats, result.reason
    model = (await ai.models(tenant_id=busy))[0]
    assert model.versions[0].lineage["row_count"] == 8 * 24 + 1


async def test_a_series_without_a_pattern_stays_challenger(
    auto_db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("auto", auto_db)).id
    await seed(auto_db, tenant, days=5, count=noisy)
    auto, ai = trainer(auto_db)
    outcome = await auto.train(tenant)
    assert outcome.job is not None
    result = outcome.job.result
    assert result is not None
    assert result.accuracy is not None
    assert result.accuracy < 0.85
    assert not result.promoted
    assert "below the target" in result.reason
    model = await ai.registry.model(tenant, "load_forecasting")
    assert model.aliases == {"challenger": 1}
    assert model.versions[0].lineage["automatic"] is True


async def test_off_by_default_it_does_nothing(auto_db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("auto", auto_db)).id
    await seed(auto_db, tenant, days=4, count=daily)
    for settings in (
        {"auto_training_enabled": False},  # the default
        {"ml_models_enabled": False},  # auto training needs the models on
    ):
        auto, ai = trainer(auto_db, **settings)
        assert not auto.enabled
        await auto.start()
        assert not auto.running
        done = await auto.run_round()
        assert (done.trained, sum(done.skipped.values())) == ((), 0)
        with pytest.raises(NotFound):
            await ai.registry.model(tenant, "load_forecasting")
    assert not load_settings().auto_training_enabled


async def test_two_processes_in_parallel_train_a_tenant_once(
    auto_db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("auto", auto_db)).id
    await seed(auto_db, tenant, days=4, count=daily)
    (first, ai), (second, _) = trainer(auto_db), trainer(auto_db)
    async with advisory_lock(auto_db, f"tenantry.ai.auto:{tenant}") as held:
        assert held  # as a third process training the tenant would
        locked_out = await first.train(tenant)
    assert (locked_out.skipped, locked_out.job) == (AutoTrainingSkip.BUSY, None)
    outcomes = await asyncio.gather(first.train(tenant), second.train(tenant))
    assert sorted(o.skipped is None for o in outcomes) == [False, True]
    loser = next(o for o in outcomes if o.skipped is not None)
    assert loser.skipped in (AutoTrainingSkip.BUSY, AutoTrainingSkip.NOT_DUE)
    model = await ai.registry.model(tenant, "load_forecasting")
    assert [v.version for v in model.versions] == [1]


async def test_a_suspended_tenant_is_skipped(auto_db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("auto", auto_db)).id
    await seed(auto_db, tenant, days=4, count=daily)
    await TenantRegistry(auto_db).update_status(tenant, "suspended")
    auto, ai = trainer(auto_db)
    done = await auto.run_round()
    assert tenant not in {t.tenant_id for t in done.trained}
    assert (await auto.train(tenant)).skipped is AutoTrainingSkip.NOT_ACTIVE
    with pytest.raises(NotFound):
        await ai.registry.model(tenant, "load_forecasting")


async def test_a_round_trains_at_most_its_share_round_robin(
    auto_db: Database, new_tenant: NewTenant
) -> None:
    tenants = [(await new_tenant("auto", auto_db)).id for _ in range(2)]
    for tenant in tenants:
        await seed(auto_db, tenant, days=4, count=daily)
    auto, _ = trainer(auto_db, auto_training_tenants=1)
    trained: list[str] = []
    for _ in range(4):  # the earlier tests' tenants: trained already, or one of them to train
        done = (await auto.run_round()).trained
        assert len(done) <= 1
        trained += [t.tenant_id for t in done]
    assert set(tenants) <= set(trained)
    assert len(trained) == len(set(trained))


def test_a_manual_training_is_not_automatic_and_a_caller_cannot_say_it_is() -> None:
    rows = {"features": [[float(i % 24)] for i in range(72)]}
    assert TrainingData.of(rows).lineage()["automatic"] is False
    with pytest.raises(InvalidInput, match="unknown fields: automatic"):
        TrainingData.of(rows | {"automatic": True})


async def test_the_service_runs_the_trainer_when_it_is_on(auto_settings: Settings) -> None:
    for on in (False, True):
        app = create_app(auto_settings.model_copy(update={"auto_training_enabled": on}))
        async with app.router.lifespan_context(app):
            auto = app.state.tenantry.auto_training
            assert auto.running is on
            assert auto.interval == 600.0  # rounds every 10 minutes; a tenant due once a day
        assert not auto.running

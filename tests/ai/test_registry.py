"""The model registry and the AI manager on PostgreSQL: versions, aliases, lineage, bounds, the
audit trail; files refused when tampered with or holding a type outside the allow-list;
promotion by accuracy; micro-batching; another tenant sees nothing."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sqlalchemy import text

from tenantry.ai import AIManager, MicroBatcher, MLModelManager, MultiSeasonalForecaster, fit_load
from tenantry.ai import registry as registry_module
from tenantry.ai.files import digest, dump_hst, load_hst
from tenantry.audit.trail import trail_for
from tenantry.config import load_settings
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import (
    Conflict,
    FeatureDisabled,
    InvalidInput,
    ModelFileRejected,
    NotFound,
)
from tests.ai.data import anomaly_data, latency_data
from tests.conftest import NewTenant

FAST = {"max_iter": 30}


def manager(db: Database, **settings: Any) -> AIManager:
    return AIManager(db, settings=load_settings(ml_models_enabled=True, **settings))


async def _actions(db: Database, tenant: str) -> list[tuple[str, str, dict[str, Any]]]:
    entries = await trail_for(db).audit_log.entries(tenant, 0, 200)
    return [
        (e.entry.action, e.entry.resource, e.entry.detail or {})
        for e in entries
        if e.entry is not None and e.entry.action.startswith("ai.")
    ]


async def test_versions_aliases_lineage_and_audit(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    ai = manager(db, prediction_accuracy_target=0.5)
    first = await ai.train_model(
        "performance_predictor", latency_data(), parameters=FAST, tenant_id=tenant, actor="ann"
    )
    assert (first.model_name, first.version, first.promoted) == ("performance_predictor", 1, True)
    assert first.accuracy is not None
    assert first.accuracy > 0.8
    assert first.metrics["mae"] < first.metrics["baseline_mae"]
    # Worse data (pure noise targets): a challenger that does not beat the champion.
    noisy = latency_data(seed=3, noise=40.0)
    second = await ai.train_model(
        "performance_predictor", noisy, parameters=FAST, tenant_id=tenant, actor="bob"
    )
    assert (second.version, second.promoted, second.champion_version) == (2, False, 1)
    model = (await ai.models(tenant_id=tenant))[0]
    assert model.aliases == {"champion": 1, "challenger": 2}
    assert [v.version for v in model.versions] == [2, 1]
    lineage = model.versions[1].lineage
    assert lineage["row_count"] == 300
    assert lineage["rows"] == "seed=1"
    assert lineage["source"] == "tests.ai.data.latency_data"
    assert len(lineage["sha256"]) == 64
    assert model.versions[0].trained_by == "bob"
    assert model.versions[0].file_format == "skops"
    # Predictions use the champion; by name or by row.
    row = {"rps": 5.0, "cpu": 5.0, "pool": 1.0}
    by_name = await ai.predict("performance_predictor", row, tenant_id=tenant)
    by_row = await ai.predict("performance_predictor", [[5.0, 5.0, 1.0]], tenant_id=tenant)
    assert by_name.version == 1
    assert by_name.outputs == by_row.outputs
    assert abs(by_name.outputs[0] - (5 + 10 + 25 / 4 + 3 * np.sin(1.0))) < 3
    # Promotion by hand moves the champion and drops the challenger alias.
    promoted = await ai.promote("performance_predictor", 2, tenant_id=tenant, actor="ann")
    assert promoted.aliases == {"champion": 2}
    assert (await ai.predict("performance_predictor", row, tenant_id=tenant)).version == 2
    actions = await _actions(db, tenant)
    assert [a for a, _, _ in actions].count("ai.model.version.create") == 2
    aliases = [d for a, _, d in actions if a == "ai.model.alias"]
    assert {"alias": "champion", "version": 2, "was": 1} in aliases


async def test_bad_inputs_change_nothing(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    ai = manager(db)
    data = latency_data(n=40)
    bad = [
        {**data, "features": [[float("nan"), 1.0, 2.0], *data["features"][1:]]},
        {**data, "target": data["target"][:-1]},
        {**data, "features": data["features"][:10], "target": data["target"][:10]},
        {**data, "surprise": 1},
        {key: v for key, v in data.items() if key != "target"},
    ]
    for training in bad:
        with pytest.raises(InvalidInput):
            await ai.train_model("performance_predictor", training, tenant_id=tenant)
    with pytest.raises(InvalidInput):
        await ai.train_model("performance_predictor", data, parameters={"x": 1}, tenant_id=tenant)
    with pytest.raises(InvalidInput):
        await ai.train_model("no_such_type", data, tenant_id=tenant)
    with pytest.raises(InvalidInput, match="one series"):  # three features, not one series
        await ai.train_model("load_forecasting", data, tenant_id=tenant)
    assert await ai.models(tenant_id=tenant) == []
    await ai.train_model("performance_predictor", data, parameters=FAST, tenant_id=tenant)
    await ai.promote("performance_predictor", tenant_id=tenant)
    for rows in ([[1.0, 2.0]], [[1.0, 2.0, float("inf")]], {"rps": 1.0}, "x"):
        with pytest.raises(InvalidInput):
            await ai.predict("performance_predictor", rows, tenant_id=tenant)
    off = AIManager(db, settings=load_settings(ml_models_enabled=False))
    with pytest.raises(FeatureDisabled, match="ML_MODELS_ENABLED"):
        await off.predict("performance_predictor", [[1.0, 2.0, 3.0]], tenant_id=tenant)


async def _tamper(db: Database, tenant: str, sql: str, **params: Any) -> None:
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            await conn.execute(text(sql), params)


async def test_a_tampered_file_or_a_foreign_type_is_refused(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    ai = manager(db, prediction_accuracy_target=0.0)
    await ai.train_model("performance_predictor", latency_data(n=60), parameters=FAST,
                         tenant_id=tenant)  # fmt: skip
    await _tamper(
        db, tenant,
        "UPDATE tenantry.ai_model_versions SET file = file || '\\x00'::bytea",
    )  # fmt: skip
    fresh = manager(db)  # no cached model
    with pytest.raises(ModelFileRejected, match="SHA-256"):
        await fresh.predict("performance_predictor", [[1.0, 2.0, 3.0]], tenant_id=tenant)
    # A skops file of a type outside the allow-list, with its digest set to match.
    sneaky = sio.dumps({"payload": np.arange(3), "f": io.BytesIO})
    for file in (sneaky,):
        await _tamper(
            db, tenant,
            "UPDATE tenantry.ai_model_versions SET file = :f, sha256 = :s",
            f=file, s=digest(file),
        )  # fmt: skip
        with pytest.raises(ModelFileRejected, match="allow-list"):
            await manager(db).predict("performance_predictor", [[1.0, 2.0, 3.0]], tenant_id=tenant)


async def test_anomaly_detectors_and_the_hst_state_round_trip(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    ai = manager(db, prediction_accuracy_target=0.5, anomaly_detection_threshold=0.95)
    forest = await ai.train_model(
        "anomaly_detector", anomaly_data(), name="forest", parameters={"n_estimators": 50},
        tenant_id=tenant,
    )  # fmt: skip
    assert forest.promoted, forest
    assert forest.metrics["f1"] >= 0.5, forest
    out = await ai.predict("forest", [[0.0, 0.0], [9.0, 9.0]], tenant_id=tenant)
    assert [o["anomaly"] for o in out.outputs] == [False, True]
    hst = await ai.train_model(
        "anomaly_detector", anomaly_data(), name="stream",
        parameters={"method": "half_space_trees", "n_estimators": 10, "window_size": 50},
        tenant_id=tenant,
    )  # fmt: skip
    model = (await ai.models(tenant_id=tenant))[1]
    assert model.name == "stream"
    assert model.versions[0].file_format == "river-hst-json"
    stored = await ai.registry.version_file(tenant, "stream", hst.version)
    loaded = load_hst(stored.file, stored.sha256)
    assert dump_hst(loaded) == stored.file  # the JSON state round-trips exactly
    far, near = loaded.score_one({0: 9.0, 1: 9.0}), loaded.score_one({0: 0.0, 1: 0.0})
    assert far > near
    # Unlabelled: no accuracy, never promoted automatically.
    unlabelled = {"features": anomaly_data()["features"]}
    result = await ai.train_model("anomaly_detector", unlabelled, name="blind", tenant_id=tenant)
    assert result.accuracy is None
    assert not result.promoted
    assert "labels" in result.reason


async def test_the_bounds(db: Database, new_tenant: NewTenant, monkeypatch: Any) -> None:
    tenant = (await new_tenant()).id
    ai = manager(db, prediction_accuracy_target=1.0)  # never promoted: versions pile up
    monkeypatch.setattr(registry_module, "MAX_VERSIONS_KEPT", 2)
    monkeypatch.setattr(registry_module, "MAX_MODELS", 2)
    data, params = latency_data(n=30), {"max_iter": 5}
    for _ in range(2):
        await ai.train_model("performance_predictor", data, parameters=params, tenant_id=tenant)
    await ai.promote("performance_predictor", 1, tenant_id=tenant)  # v1 is kept by its alias
    for _ in range(3):
        await ai.train_model("performance_predictor", data, parameters=params, tenant_id=tenant)
    model = (await ai.models(tenant_id=tenant))[0]
    assert [v.version for v in model.versions] == [5, 4, 1]
    assert model.aliases == {"champion": 1, "challenger": 5}
    pruned = [d for a, _, d in await _actions(db, tenant) if a == "ai.model.version.prune"]
    assert pruned
    assert {v for d in pruned for v in d["versions"]} == {2, 3}
    await ai.train_model("performance_predictor", data, name="b", parameters=params,
                         tenant_id=tenant)  # fmt: skip
    with pytest.raises(Conflict, match="at most 2 models"):
        await ai.train_model("performance_predictor", data, name="c", parameters=params,
                             tenant_id=tenant)  # fmt: skip
    with pytest.raises(Conflict, match="is a performance_predictor"):
        await ai.train_model("anomaly_detector", data, name="b", tenant_id=tenant)
    monkeypatch.setattr(registry_module, "MAX_FILE_BYTES", 10)
    with pytest.raises(InvalidInput):
        await ai.train_model("performance_predictor", data, name="b", parameters=params,
                             tenant_id=tenant)  # fmt: skip


async def test_another_tenant_sees_nothing(db: Database, new_tenant: NewTenant) -> None:
    owner, other = (await new_tenant()).id, (await new_tenant()).id
    ai = manager(db, prediction_accuracy_target=0.0)
    await ai.train_model("performance_predictor", latency_data(n=60), name="secret",
                         parameters=FAST, tenant_id=owner)  # fmt: skip
    assert await ai.models(tenant_id=other) == []
    with pytest.raises(NotFound):
        await ai.predict("secret", [[1.0, 2.0, 3.0]], tenant_id=other)
    with pytest.raises(NotFound):
        await ai.promote("secret", 1, tenant_id=other)
    with pytest.raises(NotFound):
        await MLModelManager(db).version_file(other, "secret", 1)
    with tenant_scope(other):
        async with db.tenant_transaction() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM tenantry.ai_model_versions")) == 0


async def test_micro_batching_gives_each_caller_its_own_rows() -> None:
    batcher = MicroBatcher(window=0.005, max_rows=1000)
    calls: list[int] = []

    def double(rows: Any) -> list[float]:
        calls.append(len(rows))
        return [float(r[0]) * 2 for r in rows]

    rows = [np.array([[float(i)]] * (1 + i % 3)) for i in range(50)]
    results = await asyncio.gather(*(batcher.submit("k", r, double) for r in rows))
    for i, result in enumerate(results):
        assert result == [2.0 * i] * (1 + i % 3)
    assert len(calls) == 1
    assert calls[0] == sum(len(r) for r in rows)
    # A full batch goes at once; a failing call fails each of its callers.
    small = MicroBatcher(window=10.0, max_rows=4)
    out = await asyncio.wait_for(
        asyncio.gather(*(small.submit("k", np.array([[1.0]]), double) for _ in range(4))), 1
    )
    assert out == [[2.0]] * 4

    def broken(rows: Any) -> list[float]:
        raise ValueError("no")

    failing = await asyncio.gather(
        *(batcher.submit("x", np.array([[1.0]]), broken) for _ in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(f, ValueError) for f in failing)


async def test_concurrent_predictions_are_batched(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    ai = manager(db, prediction_accuracy_target=0.0)
    await ai.train_model("performance_predictor", latency_data(n=60), parameters=FAST,
                         tenant_id=tenant)  # fmt: skip
    rows = [[float(i % 10), 1.0, 2.0] for i in range(64)]
    alone = [(await ai.predict("performance_predictor", [r], tenant_id=tenant)).outputs[0]
             for r in rows]  # fmt: skip
    before = ai.batcher.calls
    together = await asyncio.gather(
        *(ai.predict("performance_predictor", [r], tenant_id=tenant) for r in rows)
    )
    assert [p.outputs[0] for p in together] == alone
    assert ai.batcher.calls - before < len(rows) / 4


async def test_a_load_forecaster_is_trained_measured_against_seasonal_naive_and_asked(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("ai")).id
    ai = AIManager(db, settings=load_settings(ml_models_enabled=True))
    hours = np.arange(24 * 21)  # three weeks of hourly load: a daily swing, a slow rise, noise
    noise = np.random.default_rng(3).normal(0, 4, len(hours))
    load = 200 + 0.05 * hours + 80 * np.sin(2 * np.pi * hours / 24) + noise
    data = {"features": [[float(v)] for v in load], "source": "requests_per_second"}
    result = await ai.train_model(
        "load_forecasting", data, parameters={"period": 24}, tenant_id=tenant
    )
    metrics = result.metrics
    assert metrics["held_out_buckets"] == 24
    assert metrics["mae"] < 8  # twice the noise: it learned the swing (ignoring it costs ~50)
    ratio = metrics["mae"] / metrics["seasonal_naive_mae"]
    assert metrics["mae_over_seasonal_naive"] == pytest.approx(ratio)  # the baseline, measured
    assert result.accuracy is not None
    assert result.accuracy > 0.95  # 1 - MAPE on the held out day
    assert result.promoted  # meets the target (0.85), no champion to beat
    steps = await ai.predict("load_forecasting", [[1.0], [24.0]], tenant_id=tenant)
    ahead = np.array([504, 527])  # the first and the 24th hour after the series
    expected = 200 + 0.05 * ahead + 80 * np.sin(2 * np.pi * ahead / 24)
    assert np.allclose(steps.outputs, expected, atol=25)
    for bad in ([[0.0]], [[1.5]], [[1.0, 2.0]]):
        with pytest.raises(InvalidInput):
            await ai.predict("load_forecasting", bad, tenant_id=tenant)
    again = await ai.train_model(  # the same configuration on the same data: no better
        "load_forecasting", data, parameters={"period": 24}, tenant_id=tenant
    )
    assert not again.promoted
    assert "does not beat" in again.reason
    short = {"features": [[1.0]] * 40}
    with pytest.raises(InvalidInput, match="twice the horizon"):
        await ai.train_model("load_forecasting", short, tenant_id=tenant)


async def test_the_load_forecasters_default_is_the_products_default_setting(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("ai")).id
    ai = AIManager(db, settings=load_settings(ml_models_enabled=True))
    hours = np.arange(24 * 22)  # three weeks and a day: a daily swing, quiet weekends, noise
    rng = np.random.default_rng(4)
    weekend = np.where((hours // 24) % 7 >= 5, 0.5, 1.0)
    load = (100 + 40 * np.sin(2 * np.pi * hours / 24)) * weekend + rng.normal(0, 3, len(hours))
    data = {"features": [[float(v)] for v in load]}
    result = await ai.train_model("load_forecasting", data, tenant_id=tenant)
    history = load[:-24]  # the held-out day is measured by the same setting
    held = fit_load(history, 24, 24).forecast(24).mean
    assert result.metrics["mae"] == pytest.approx(np.mean(np.abs(load[-24:] - held)))
    steps = await ai.predict(  # the stored version (JSON, either kind) is fit_load's
        "load_forecasting", [[float(h)] for h in range(1, 25)], tenant_id=tenant
    )
    expected = fit_load(load, 24, 24)
    assert isinstance(expected, MultiSeasonalForecaster)
    assert expected.periods == (24, 168)
    assert expected.boxcox_lambda is not None
    assert expected.adjusted.kind == "trend"
    assert steps.outputs == pytest.approx(expected.forecast(24).mean)
    # hours without load: no Box-Cox by default; asking for it on them (not cleaned) is refused
    idle = {"features": [[0.0]] * 24 + data["features"][24:]}
    trained = await ai.train_model("load_forecasting", idle, tenant_id=tenant)
    assert trained.version == result.version + 1
    with pytest.raises(InvalidInput, match="positive"):
        await ai.train_model(
            "load_forecasting", idle, parameters={"boxcox": 1, "clean": 0}, tenant_id=tenant
        )
    former = await ai.train_model(  # the former default, ETS on the day, still available
        "load_forecasting", data, parameters={"mstl": 0, "multistep": 0}, tenant_id=tenant
    )
    assert former.champion_accuracy is not None  # the champion refitted on the same history

"""The threat analysis's optional detector: a tenant's ``threat_window`` anomaly_detector champion
in its AI registry scores the window's counts; without one (none, not promoted, ML off, a file
refused by its SHA-256, another tenant's) the score is the statistic of the window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from tenantry.ai import AIManager
from tenantry.ai.models import ai_model_versions
from tenantry.config import load_settings
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput
from tenantry.threats.detector import DETECTOR_MODEL, WindowDetector
from tenantry.threats.manager import ThreatAnalyzer
from tests.conftest import NewTenant
from tests.threats.test_manager import HOUR, NOW, add


def _ai(db: Database, *, enabled: bool = True) -> AIManager:
    return AIManager(db, settings=load_settings(ml_models_enabled=enabled))


async def _usual_hours(db: Database, tenant: str, hours: int) -> None:
    """``hours`` hours before NOW with the tenant's usual events, a little different each hour."""
    for i in range(hours):
        at = NOW - HOUR * (i + 1) + timedelta(minutes=5)
        failed = 30 if i == 7 else 1 + i % 3  # one busy hour: the range a forest can split
        await add(db, tenant, "failed_validation", failed, at=at, every=timedelta(seconds=50))
        if i % 2:
            await add(db, tenant, "new_device", at=at)


async def test_a_promoted_detector_scores_the_window_and_the_statistic_otherwise(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant, other = (await new_tenant()).id, (await new_tenant()).id
    await _usual_hours(db, tenant, 60)
    await _usual_hours(db, other, 3)
    ai = _ai(db)
    analyzer = ThreatAnalyzer(db, detector=WindowDetector(ai))
    before = await analyzer.analyze(tenant, HOUR, now=NOW)
    assert (before.anomaly_method, before.anomaly_model_version) == ("statistical", 0)
    assert before.model_anomaly is None

    data = await analyzer.training_windows(tenant, HOUR, 48, now=NOW - HOUR)
    assert data["feature_names"] == list(analyzer.rules)
    assert len(data["features"]) == 48
    assert sum(r[0] for r in data["features"]) > 0  # failed_validation counted per window
    trained = await ai.train_model(
        "anomaly_detector", data, name=DETECTOR_MODEL, parameters={"n_estimators": 30},
        tenant_id=tenant,
    )  # fmt: skip
    assert not trained.promoted  # unlabelled: a challenger, not used
    analyzer.detector.forget(tenant)  # type: ignore[union-attr]
    assert (await analyzer.analyze(tenant, HOUR, now=NOW)).anomaly_method == "statistical"
    await ai.promote(DETECTOR_MODEL, tenant_id=tenant)
    analyzer.detector.forget(tenant)  # type: ignore[union-attr]

    usual = await analyzer.analyze(tenant, HOUR, now=NOW)
    assert (usual.anomaly_method, usual.anomaly_model_version) == ("model", 1)
    assert usual.model_anomaly is False
    # a count inside the trained range but where no window was: an IsolationForest cannot score
    # past the range it was trained on (a burst beyond it is the statistic's: bursts, levels)
    await add(db, tenant, "failed_validation", 14, at=NOW - timedelta(minutes=20))
    unusual = await analyzer.analyze(tenant, HOUR, now=NOW)
    assert (unusual.anomaly_method, unusual.model_anomaly) == ("model", True)
    assert 0 <= usual.anomaly_score < unusual.anomaly_score <= 1
    expected = await ai.predict(
        DETECTOR_MODEL, {k: unusual.counts.get(k, 0) for k in analyzer.rules}, tenant_id=tenant
    )
    assert unusual.anomaly_score == round(expected.outputs[0]["score"], 3)

    # another tenant's windows: its own registry has no detector
    assert (await analyzer.analyze(other, HOUR, now=NOW)).anomaly_method == "statistical"
    # ML off: the statistic
    off = ThreatAnalyzer(db, detector=WindowDetector(_ai(db, enabled=False)))
    assert (await off.analyze(tenant, HOUR, now=NOW)).anomaly_method == "statistical"
    # a changed file is refused by its SHA-256: the statistic, not an error
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            await conn.execute(
                update(ai_model_versions)
                .where(ai_model_versions.c.model_name == DETECTOR_MODEL)
                .values(file=b"PK\x03\x04 not the model")
            )
    fresh = ThreatAnalyzer(db, detector=WindowDetector(_ai(db)))
    refused = await fresh.analyze(tenant, HOUR, now=NOW)
    assert (refused.anomaly_method, refused.anomaly_model_version) == ("statistical", 0)
    plain = await ThreatAnalyzer(db).analyze(tenant, HOUR, now=NOW)
    assert refused.anomaly_score == plain.anomaly_score != unusual.anomaly_score
    for bad in ({"window": timedelta(0)}, {"windows": 0}, {"windows": 10**6}):
        with pytest.raises(InvalidInput):
            await analyzer.training_windows(tenant, **bad)  # type: ignore[arg-type]

"""The behaviour models in the AI registry: each trained model a version of the tenant's
``session_behaviour`` (listed by ``GET /ai/models`` for that tenant only, with its metrics and
lineage), the champion what every node scores with, a rollback by ``promote`` followed, the type
refused to ``train_model`` and its name to other types, the version audited."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tenantry.ai import AIManager
from tenantry.audit import trail_for
from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.errors import Conflict, InvalidInput
from tenantry.sessions.behaviour import FEATURE_NAMES
from tenantry.sessions.schemas import BEHAVIOUR_MODEL
from tests.ai.data import latency_data
from tests.conftest import TOKEN, NewTenant
from tests.sessions.learning_world import day_shift, node, normal_sessions, seed


async def _tenant(client: httpx.AsyncClient, name: str) -> tuple[str, dict[str, str]]:
    tenant = f"{name}-{uuid.uuid4().hex[:10]}"
    created = await client.post(
        "/tenants", json={"id": tenant, "display_name": tenant}, headers=TOKEN
    )
    assert created.status_code == 201, created.text
    return tenant, {**TOKEN, "X-Tenant-ID": tenant}


async def test_a_trained_behaviour_model_is_a_registry_version_of_its_tenant(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant, owner = await _tenant(client, "bhv-owner")
    _, other = await _tenant(client, "bhv-other")
    a, b = node(db), node(db)
    data = normal_sessions(21, 45, users=5)
    shift = day_shift(data)
    await seed(db, tenant, data[:30], shift=shift)
    probe = (await seed(db, tenant, data[30:31], live=True, shift=shift)).session_ids[0]
    assert (await b.get_session_analytics(probe))["method"] == "rules"
    assert (await client.get("/ai/models", headers=owner)).json() == []

    assert (await a.learn_behaviour(tenant)).model_version == 1
    [listed] = (await client.get("/ai/models", headers=owner)).json()
    assert (listed["name"], listed["model_type"]) == (BEHAVIOUR_MODEL, BEHAVIOUR_MODEL)
    assert listed["aliases"] == {"champion": 1}
    [v1] = listed["versions"]
    assert v1["file_format"] == "tenantry-behaviour"
    assert v1["trained_by"] == "tenantry.sessions.learner"
    lineage = v1["lineage"]
    assert lineage["source"] == "sessions"
    assert lineage["row_count"] == lineage["sessions"] == v1["metrics"]["samples"] > 0
    assert lineage["feature_names"] == list(FEATURE_NAMES)
    assert lineage["start"] <= lineage["end"]
    assert lineage["rows"].startswith("behaviour_samples ")
    assert 0 < v1["metrics"]["forest_score_p50"] <= v1["metrics"]["forest_score_p99"] <= 1
    assert v1["parameters"]["trees"] == 10
    assert (await client.get("/ai/models", headers=other)).json() == []  # its own registry
    # the node that had scored by the rules reads the champion at its next score
    scored = await b.get_session_analytics(probe)
    assert (scored["method"], scored["model_version"]) == ("model", 1)

    # the registry asks the same model: the model's part of a score, per feature vector
    vector = list(scored["features"].values())
    answer = await client.post(
        f"/ai/models/{BEHAVIOUR_MODEL}/predict", json={"input_data": [vector]}, headers=owner
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 1
    assert 0 <= answer.json()["outputs"][0]["score"] <= 1
    for response in (
        await client.post(f"/ai/models/{BEHAVIOUR_MODEL}/predict",
                          json={"input_data": [vector]}, headers=other),
        await client.post(f"/ai/models/{BEHAVIOUR_MODEL}/promote", json={}, headers=other),
    ):  # fmt: skip
        assert response.status_code == 404, response.text

    # a retraining is version 2, champion; version 1 is kept
    await seed(db, tenant, data[31:], shift=shift)
    assert (await a.learn_behaviour(tenant)).model_version == 2
    [listed] = (await client.get("/ai/models", headers=owner)).json()
    assert listed["aliases"] == {"champion": 2}
    assert [v["version"] for v in listed["versions"]] == [2, 1]
    assert listed["versions"][0]["lineage"]["through"] > lineage["through"]
    assert (await b.get_session_analytics(probe))["model_version"] == 2
    # a rollback by hand (audited) is what every node scores with next
    back = await client.post(
        f"/ai/models/{BEHAVIOUR_MODEL}/promote", json={"version": 1}, headers=owner
    )
    assert back.status_code == 200, back.text
    assert (await b.get_session_analytics(probe))["model_version"] == 1
    assert (await a.get_session_analytics(probe))["model_version"] == 1

    # trained only by the learner: train_model refuses the type, other types its name
    refused = await client.post(
        f"/ai/models/{BEHAVIOUR_MODEL}/train",
        json={"training_data": {"features": [[0.0] * len(FEATURE_NAMES)] * 30}},
        headers=owner,
    )
    assert refused.status_code == 422, refused.text
    taken = await client.post(
        "/ai/models/performance_predictor/train",
        json={"name": BEHAVIOUR_MODEL, "training_data": latency_data(n=40),
              "parameters": {"max_iter": 5}},
        headers=owner,
    )  # fmt: skip
    assert taken.status_code == 202  # a job: it fails, and stores nothing
    [listed] = (await client.get("/ai/models", headers=owner)).json()
    assert [v["version"] for v in listed["versions"]] == [2, 1]

    # every registry change of the learner is in the tenant's audit log
    entries = await trail_for(db).audit_log.entries(tenant, 0, 200)
    kinds = [(e.entry.action, e.entry.resource) for e in entries if e.entry is not None]
    assert ("ai.model.version.create", f"ai_model:{BEHAVIOUR_MODEL}:1") in kinds
    assert ("ai.model.version.create", f"ai_model:{BEHAVIOUR_MODEL}:2") in kinds


async def test_the_name_of_a_model_type_is_that_types(db: Database, new_tenant: NewTenant) -> None:
    new_tenant_id = (await new_tenant()).id
    ai = AIManager(db, settings=load_settings(ml_models_enabled=True))
    with pytest.raises(Conflict, match="model type's name"):
        await ai.train_model(
            "performance_predictor", latency_data(n=40), name=BEHAVIOUR_MODEL,
            parameters={"max_iter": 5}, tenant_id=new_tenant_id,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="trained by the behaviour learner"):
        await ai.train_model(
            BEHAVIOUR_MODEL, {"features": [[0.0] * len(FEATURE_NAMES)] * 30},
            tenant_id=new_tenant_id,
        )  # fmt: skip
    assert await ai.registry.models(new_tenant_id) == []

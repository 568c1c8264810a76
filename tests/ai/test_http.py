"""The AI routes: a training job followed to its end, predictions, promotion, the listing; bad
inputs answer 422 problem+json and store nothing; another tenant's model or job is 404; with
ML_MODELS_ENABLED off every route answers 409."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tenantry.api import create_app
from tenantry.config import Settings
from tests.ai.data import latency_data
from tests.conftest import TOKEN

PROBLEM = "application/problem+json"


async def _tenant(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    import uuid  # noqa: PLC0415

    tenant = f"{name}-{uuid.uuid4().hex[:10]}"
    created = await client.post(
        "/tenants", json={"id": tenant, "display_name": tenant}, headers=TOKEN
    )
    assert created.status_code == 201, created.text
    return {**TOKEN, "X-Tenant-ID": tenant}


async def _finished(client: httpx.AsyncClient, job: str, headers: dict[str, str]) -> Any:
    for _ in range(400):
        got = (await client.get(f"/ai/jobs/{job}", headers=headers)).json()
        if got["status"] in ("succeeded", "failed"):
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(got)


async def test_train_predict_promote_over_http(client: httpx.AsyncClient) -> None:
    owner, other = await _tenant(client, "ai-owner"), await _tenant(client, "ai-other")
    body = {"name": "latency", "training_data": latency_data(), "parameters": {"max_iter": 30}}
    started = await client.post("/ai/models/performance_predictor/train", json=body, headers=owner)
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["status"] in ("queued", "running")
    assert job["model_name"] == "latency"
    done = await _finished(client, job["id"], owner)
    assert (done["status"], done["progress"]) == ("succeeded", 1.0), done
    assert done["result"]["version"] == 1
    assert done["result"]["promoted"] is True
    answer = await client.post(
        "/ai/models/latency/predict", json={"input_data": [[5, 5, 1], [1, 1, 1]]}, headers=owner
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 1
    assert len(answer.json()["outputs"]) == 2
    listed = (await client.get("/ai/models", headers=owner)).json()
    assert listed[0]["aliases"] == {"champion": 1}
    assert listed[0]["versions"][0]["lineage"]["row_count"] == 300
    promoted = await client.post("/ai/models/latency/promote", json={"version": 1}, headers=owner)
    assert promoted.status_code == 200
    # Another tenant: its own (empty) registry; the model and the job are not found.
    for response in (
        await client.post("/ai/models/latency/predict", json={"input_data": [[1, 2, 3]]},
                          headers=other),
        await client.post("/ai/models/latency/promote", json={}, headers=other),
        await client.get(f"/ai/jobs/{job['id']}", headers=other),
    ):  # fmt: skip
        assert response.status_code == 404, response.text
    assert (await client.get("/ai/models", headers=other)).json() == []
    # Bad inputs: 422 problem+json, nothing stored.
    bad: list[tuple[str, Any]] = [
        ("/ai/models/performance_predictor/train",
         {"training_data": {**latency_data(n=30), "features": [[1.0]] * 30}}),
        ("/ai/models/performance_predictor/train", {"training_data": {"features": [[1.0]] * 5}}),
        ("/ai/models/performance_predictor/train",
         {"training_data": {k: v for k, v in latency_data(n=30).items() if k != "target"}}),
        ("/ai/models/nothing/train", {"training_data": latency_data(n=30)}),
        ("/ai/models/latency/predict", {"input_data": [[1, 2]]}),
        ("/ai/models/latency/predict", {"input_data": [[1, 2, 3]] * 10_001}),
    ]  # fmt: skip
    for path, payload in bad:
        response = await client.post(path, json=payload, headers=owner)
        assert response.status_code == 422, (path, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
    nan = await client.post(
        "/ai/models/latency/predict", content=b'{"input_data": [[NaN, 1, 2]]}',
        headers={**owner, "content-type": "application/json"},
    )  # fmt: skip
    assert nan.status_code == 422, nan.text
    huge = await client.post(
        "/ai/models/latency/predict", content=b"[" + b"1," * 600_000 + b"1]",
        headers={**owner, "content-type": "application/json"},
    )  # fmt: skip
    assert huge.status_code == 413
    forecasting = await client.post(  # three features: not a series
        "/ai/models/load_forecasting/train", json={"training_data": latency_data(n=30)},
        headers=owner,
    )  # fmt: skip
    assert forecasting.status_code == 422
    assert "one series" in forecasting.text
    after = (await client.get("/ai/models", headers=owner)).json()
    assert [(m["name"], len(m["versions"])) for m in after] == [("latency", 1)]


async def test_routes_answer_409_when_ml_models_are_off(settings: Settings) -> None:
    off = settings.model_copy(update={"ml_models_enabled": False})
    app = create_app(off)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = await _tenant(client, "ai-off")
            for response in (
                await client.get("/ai/models", headers=headers),
                await client.post("/ai/models/performance_predictor/train",
                                  json={"training_data": latency_data(n=30)}, headers=headers),
                await client.post("/ai/models/x/predict", json={"input_data": [[1.0]]},
                                  headers=headers),
                await client.get("/ai/jobs/job_x", headers=headers),
            ):  # fmt: skip
                assert response.status_code == 409, response.text
                assert "ML_MODELS_ENABLED" in response.text

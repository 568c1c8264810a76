"""The shipped example, "release a track", run by the service over HTTP: its worker runs the
saga in the background, the label's Slack (loopback) gets the message, an injected failure is
retried or compensated, bad input changes nothing, and roles decide who may do what."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tenantry.api import create_app
from tenantry.config import Settings
from tests.conftest import TOKEN
from tests.support.slack_server import SlackServer

RELEASE = {
    "title": "  Night   Drive ",
    "artists": ["Ada Wave", "Ada Wave", "Bo"],
    "release_date": "2027-03-01",
    "country": "DE",
    "registrant": "TNT",
    "stores": ["spotify", "apple_music"],
}


async def _finished(client: httpx.AsyncClient, headers: dict[str, str], wid: str) -> Any:
    for _ in range(400):
        got = (await client.get(f"/workflows/{wid}", headers=headers)).json()
        if got["finished_at"] is not None or got["status"] == "parked":
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"workflow {wid} did not finish: {got}")


async def test_a_track_is_released_and_the_label_told(
    settings: Settings, slack: SlackServer
) -> None:
    loopback = settings.model_copy(update={"slack_webhook_prefixes": "http://127.0.0.1:"})
    app = create_app(loopback)
    async with app.router.lifespan_context(app):
        state = app.state.tenantry
        tenant = f"label-{uuid.uuid4().hex[:12]}"
        await state.tenants.create(tenant, "Label")
        headers = {**TOKEN, "X-Tenant-ID": tenant}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            hook = {"kind": "webhook", "secret": slack.webhook("C0ALERTS")}
            put = await client.put("/alerts/receivers/default", json=hook, headers=headers)
            assert put.status_code == 200, put.text
            body = {"definition": "release_track", "input": RELEASE, "idempotency_key": "r-1"}
            made = await client.post("/workflows", json=body, headers=headers)
            assert made.status_code == 201, made.text
            again = await client.post("/workflows", json=body, headers=headers)
            assert again.json()["id"] == made.json()["id"]  # the same request: one release
            done = await _finished(client, headers, made.json()["id"])
            assert done["status"] == "completed", done
            isrc = done["result"]["register_isrc"]["isrc"]
            assert isrc == "DETNT2700001"
            assert done["result"]["validate_metadata"] == {
                "title": "Night Drive",
                "artists": ["Ada Wave", "Bo"],
            }
            for _ in range(100):  # delivered by the dispatcher's next round
                if slack.messages("C0ALERTS"):
                    break
                await asyncio.sleep(0.1)
            assert isrc in slack.messages("C0ALERTS")[0]["text"]
            records = (await client.get("/metadata", headers=headers)).json()["items"]
            assert sorted(r["content"]["kind"] for r in records) == ["distribution", "track"]

            # a failure injected into the last step: retried, then compensated
            failing = {**RELEASE, "fail_at": "notify_label", "fail_times": 100}
            body = {"definition": "release_track", "input": failing}
            made = await client.post("/workflows", json=body, headers=headers)
            done = await _finished(client, headers, made.json()["id"])
            assert done["status"] == "compensated", done
            notify = next(s for s in done["steps"] if s["name"] == "notify_label")
            assert notify["attempts"] == 3
            undone = sorted(s["name"] for s in done["steps"] if s["phase"] == "compensation")
            assert undone == ["register_isrc", "schedule_distribution"]
            records = (await client.get("/metadata", headers=headers)).json()["items"]
            assert len(records) == 2  # the compensated release left none of its records
            # a failure that passes on the retry: the next ISRC, completed
            flaky = {**RELEASE, "fail_at": "schedule_distribution", "fail_times": 1}
            made = await client.post(
                "/workflows", json={"definition": "release_track", "input": flaky},
                headers=headers,
            )  # fmt: skip
            done = await _finished(client, headers, made.json()["id"])
            assert done["status"] == "completed"
            assert done["result"]["register_isrc"]["isrc"] == "DETNT2700003"  # never reused


async def test_bad_requests_change_nothing_and_roles_decide(client: httpx.AsyncClient) -> None:
    tenant = f"label-{uuid.uuid4().hex[:12]}"
    created = await client.post("/tenants", json={"id": tenant, "display_name": "L"}, headers=TOKEN)
    assert created.status_code == 201, created.text
    headers = {**TOKEN, "X-Tenant-ID": tenant}
    cases = [
        ({"definition": "release_track", "input": {**RELEASE, "country": "Germany"}}, 422),
        ({"definition": "release_track", "input": {**RELEASE, "extra": 1}}, 422),
        ({"definition": "no_such_thing", "input": {}}, 404),
        ({"definition": "release_track", "input": RELEASE, "compensation_strategy": "x"}, 422),
        ({"definition": "release_track", "input": RELEASE, "idempotency_key": "a b"}, 422),
    ]
    for body, code in cases:
        answer = await client.post("/workflows", json=body, headers=headers)
        assert answer.status_code == code, (body, answer.text)
        assert "traceback" not in answer.text.lower()
    assert (await client.get("/workflows", headers=headers)).json() == []
    assert (await client.get("/workflows?status=nonsense", headers=headers)).status_code == 422
    missing = await client.get(f"/workflows/{uuid.uuid4()}", headers=headers)
    assert missing.status_code == 404
    definitions = (await client.get("/workflows/definitions", headers=headers)).json()
    release = next(d for d in definitions if d["name"] == "release_track")
    assert release["steps"][0] == "validate_metadata"
    assert "registrant" in release["input_schema"]["properties"]
    # a viewer reads but starts nothing; an editor starts but does not operate
    for role, start, operate in (("viewer", 403, 403), ("editor", 201, 403)):
        user = f"{role}-{uuid.uuid4().hex[:8]}"
        granted = await client.put(f"/roles/{user}/{role}", headers=headers)
        assert granted.status_code in (200, 201), granted.text
        session = await client.post(
            "/sessions/create", json={"tenant_id": tenant, "user_id": user}, headers=headers
        )
        own = {"Authorization": f"Bearer {session.json()['token']}"}
        body = {"definition": "release_track", "input": {**RELEASE, "fail_at": "validate_metadata",
                "fail_times": 100}, "compensation_strategy": "manual"}  # fmt: skip
        answer = await client.post("/workflows", json=body, headers=own)
        assert answer.status_code == start, answer.text
        assert (await client.get("/workflows", headers=own)).status_code == 200
        if start == 201:
            parked = await _finished(client, own, answer.json()["id"])
            assert parked["status"] == "parked"
            resumed = await client.post(f"/workflows/{parked['id']}/resume", headers=own)
            assert resumed.status_code == operate
            cancelled = await client.post(f"/workflows/{parked['id']}/cancel", headers=own)
            assert cancelled.json()["status"] == "cancelled"

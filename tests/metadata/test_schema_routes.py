"""The /schemas routes: register, read, check and configure over HTTP, for the caller's tenant."""

from __future__ import annotations

from typing import Any

import httpx

from tenantry.audit.trail import trail_for
from tenantry.db.engine import Database
from tenantry.sessions.manager import SessionManager
from tests.conftest import TOKEN, NewTenant
from tests.metadata.test_registry import TRACK, TRACK_BREAKS, TRACK_V2

#: TRACK_V2 with a duration that is a string: not BACKWARD compatible with it.
TRACK_RETYPED: dict[str, Any] = {
    **TRACK_V2,
    "properties": {**TRACK_V2["properties"], "duration_s": {"type": "string"}},
}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


async def test_register_read_check_and_configure(
    client: httpx.AsyncClient, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sr")).id
    backend = {**TOKEN, "X-Tenant-ID": tenant}
    first = await client.post("/schemas/track", json={"schema": TRACK}, headers=backend)
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    assert first.json()["schema"] == TRACK
    second = await client.post("/schemas/track", json={"schema": TRACK_V2}, headers=backend)
    assert second.json()["version"] == 2
    listed = (await client.get("/schemas", headers=backend)).json()
    assert [(s["name"], s["latest"], s["compatibility"]) for s in listed] == [
        ("track", 2, "BACKWARD")
    ]
    versions = (await client.get("/schemas/track/versions", headers=backend)).json()
    assert [v["version"] for v in versions] == [1, 2]
    latest = await client.get("/schemas/track/versions/latest", headers=backend)
    assert latest.json()["version"] == 2
    assert (await client.get("/schemas/track/versions/1", headers=backend)).json()["schema"] == (
        TRACK
    )

    check = await client.post(
        "/schemas/track/compatibility", json={"schema": TRACK_RETYPED}, headers=backend
    )
    assert check.status_code == 200, check.text
    assert check.json()["compatible"] is False
    assert check.json()["mode"] == "BACKWARD"
    assert check.json()["reasons"] == [
        "version 2: properties.duration_s: type integer of the old schema is not accepted by the "
        "new schema (string); breaks BACKWARD"
    ]
    refused = problem(
        await client.post("/schemas/track", json={"schema": TRACK_RETYPED}, headers=backend), 409
    )
    assert refused["title"] == "incompatible schema"
    assert [e["loc"] for e in refused["errors"]] == [["schema"]]
    assert refused["errors"][0]["msg"] == check.json()["reasons"][0]

    config = await client.put(
        "/schemas/track/config", json={"compatibility": "NONE"}, headers=backend
    )
    assert config.json()["compatibility"] == "NONE"
    third = await client.post("/schemas/track", json={"schema": TRACK_RETYPED}, headers=backend)
    assert third.json()["version"] == 3
    entries = [e.entry for e in await trail_for(db).audit_log.entries(tenant) if e.entry]
    assert [e.action for e in entries if e.action.startswith("schema.")] == [
        "schema.register",
        "schema.register",
        "schema.compatibility",
        "schema.register",
    ]


async def test_bad_input_is_a_422_listing_what_is_wrong(
    client: httpx.AsyncClient, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sr")).id
    backend = {**TOKEN, "X-Tenant-ID": tenant}
    bad = problem(
        await client.post(
            "/schemas/track",
            json={"schema": {"type": "strin", "properties": {"a": {"$ref": "http://x/y"}}}},
            headers=backend,
        ),
        422,
    )
    assert [(e["loc"], e["type"]) for e in bad["errors"]] == [(["properties", "a", "$ref"], "ref")]
    invalid = problem(
        await client.post("/schemas/track", json={"schema": {"type": "strin"}}, headers=backend),
        422,
    )
    assert invalid["errors"][0]["loc"] == ["type"]
    for path, body in (
        ("/schemas/a%20b", {"schema": TRACK}),
        ("/schemas/track", {"schema": TRACK, "compatibility": "SIDEWAYS"}),
        ("/schemas/track", {"schema": "not an object"}),
        ("/schemas/track", {"schema": TRACK, "extra": 1}),
    ):
        problem(await client.post(path, json=body, headers=backend), 422)
    problem(await client.get("/schemas/track/versions/0", headers=backend), 422)
    problem(await client.get("/schemas/track/versions/first", headers=backend), 422)
    problem(await client.get("/schemas/track/versions/1", headers=backend), 404)
    problem(await client.get("/schemas/track/versions", headers=backend), 404)
    too_big = {"schema": {"description": "x" * 70_000}}
    problem(await client.post("/schemas/track", json=too_big, headers=backend), 413)
    assert (await client.get("/schemas", headers=backend)).json() == []


async def test_a_viewer_reads_and_checks_but_does_not_register(
    client: httpx.AsyncClient, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sr")).id
    await client.post(
        "/schemas/track", json={"schema": TRACK}, headers={**TOKEN, "X-Tenant-ID": tenant}
    )
    _, token = await SessionManager(db).create_session(tenant, "noor")  # the default: viewer
    viewer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/schemas/track/versions/1", headers=viewer)).status_code == 200
    check = await client.post(
        "/schemas/track/compatibility", json={"schema": TRACK_V2}, headers=viewer
    )
    assert check.json() == {"compatible": True, "mode": "BACKWARD", "reasons": []}
    problem(await client.post("/schemas/track", json={"schema": TRACK_V2}, headers=viewer), 403)
    problem(
        await client.put("/schemas/track/config", json={"compatibility": "NONE"}, headers=viewer),
        403,
    )
    problem(await client.get("/schemas"), 401)


async def test_tenant_b_neither_sees_nor_changes_tenant_a_schemas(
    client: httpx.AsyncClient, new_tenant: NewTenant
) -> None:
    a, b = (await new_tenant("sr")).id, (await new_tenant("sr")).id
    as_a, as_b = {**TOKEN, "X-Tenant-ID": a}, {**TOKEN, "X-Tenant-ID": b}
    await client.post("/schemas/track", json={"schema": TRACK}, headers=as_a)
    assert (await client.get("/schemas", headers=as_b)).json() == []
    problem(await client.get("/schemas/track/versions/1", headers=as_b), 404)
    problem(await client.get("/schemas/track/versions/latest", headers=as_b), 404)
    problem(await client.get("/schemas/track/versions", headers=as_b), 404)
    problem(
        await client.put("/schemas/track/config", json={"compatibility": "NONE"}, headers=as_b),
        404,
    )
    # b registering the same name makes b's own subject; a's is untouched
    mine = await client.post("/schemas/track", json={"schema": TRACK_BREAKS}, headers=as_b)
    assert mine.json()["version"] == 1
    theirs = (await client.get("/schemas", headers=as_a)).json()
    assert [(s["latest"], s["compatibility"]) for s in theirs] == [(1, "BACKWARD")]
    assert (await client.get("/schemas/track/versions/latest", headers=as_a)).json()[
        "schema"
    ] == TRACK


async def test_a_deeply_nested_schema_is_refused_not_a_crash(
    client: httpx.AsyncClient, new_tenant: NewTenant
) -> None:
    backend = {**TOKEN, "X-Tenant-ID": (await new_tenant("sr")).id}
    headers = {**backend, "Content-Type": "application/json"}

    def body(depth: int) -> str:
        return '{"schema":' + '{"items":' * depth + "{}" + "}" * depth + "}"

    nested = problem(await client.post("/schemas/deep", content=body(40), headers=headers), 422)
    assert nested["detail"] == "the schema nests more than 32 levels deep (objects and arrays)"
    # deeper than the JSON parser goes: the body is refused before it reaches the registry
    problem(await client.post("/schemas/deep", content=body(5_000), headers=headers), 400)
    assert (await client.get("/schemas", headers=backend)).json() == []

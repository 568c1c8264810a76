"""The audit routes: entries, proofs, checkpoint, consistency; bad input is 404/422, never 500."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from tenantry.api import create_app
from tenantry.audit.manager import AuditLog
from tenantry.audit.merkle import verify_consistency, verify_inclusion
from tenantry.audit.notes import CheckpointSigner, NoteVerifier, verify_note
from tenantry.audit.router import audit_log
from tenantry.audit.schemas import AuditEntry
from tenantry.config import Settings
from tests.conftest import TOKEN, NewTenant

SIGNER = CheckpointSigner.generate(quantum=True)


@pytest.fixture(scope="module")
async def audit_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app and its lifespan, its audit log signing with a key the tests know."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        log = AuditLog(app.state.tenantry.database, signer=SIGNER)
        app.dependency_overrides[audit_log] = lambda: log
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tenantry") as c:
            yield c


def b64(value: str) -> bytes:
    return base64.b64decode(value)


async def test_routes(audit_client: httpx.AsyncClient, db: object, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("audithttp")).id
    log = AuditLog(db, signer=SIGNER)  # type: ignore[arg-type]
    await log.append_many(tenant, [AuditEntry(actor=f"u{i}", action="a") for i in range(11)])
    headers = {**TOKEN, "X-Tenant-ID": tenant}

    page = await audit_client.get("/audit/entries", params={"limit": 4}, headers=headers)
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["tree_size"] == 11
    assert body["next_start"] == 4
    assert [e["seq"] for e in body["entries"]] == [0, 1, 2, 3]
    assert body["entries"][1]["entry"]["actor"] == "u1"

    cp = (await audit_client.get("/audit/checkpoint", headers=headers)).json()
    keys = [NoteVerifier.decode(k) for k in cp["keys"]]
    assert len(verify_note(cp["note"], keys)) == 2
    assert cp["tree_size"] == 11

    proof = (await audit_client.get("/audit/proof/7", headers=headers)).json()
    path = [b64(p) for p in proof["path"]]
    assert verify_inclusion(b64(proof["leaf_hash"]), 7, 11, path, b64(cp["root_hash"]))
    old = await audit_client.get("/audit/proof/2", params={"tree_size": 5}, headers=headers)
    assert old.status_code == 200
    assert old.json()["tree_size"] == 5

    cons = (await audit_client.get("/audit/consistency?from=5&to=11", headers=headers)).json()
    ok = verify_consistency(
        5, 11, b64(cons["old_root"]), b64(cons["new_root"]), [b64(p) for p in cons["path"]]
    )
    assert ok
    assert cons["new_root"] == cp["root_hash"]

    for url, status in [
        ("/audit/proof/11", 404),
        ("/audit/proof/-1", 422),
        ("/audit/proof/abc", 422),
        ("/audit/proof/1?tree_size=99", 422),
        ("/audit/proof/1?tree_size=0", 422),
        ("/audit/consistency?from=7&to=3", 422),
        ("/audit/consistency?from=1&to=99", 422),
        ("/audit/consistency?from=x&to=3", 422),
        ("/audit/consistency", 422),
        ("/audit/entries?limit=0", 422),
        ("/audit/proof/99999999999999999999999", 422),
    ]:
        response = await audit_client.get(url, headers=headers)
        assert response.status_code == status, (url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_other_tenants_tree_is_invisible(
    audit_client: httpx.AsyncClient, db: object, new_tenant: NewTenant
) -> None:
    a, b = (await new_tenant("audita")).id, (await new_tenant("auditb")).id
    await AuditLog(db, signer=SIGNER).append(a, AuditEntry(actor="x", action="y"))  # type: ignore[arg-type]
    page = await audit_client.get("/audit/entries", headers={**TOKEN, "X-Tenant-ID": b})
    assert page.json()["tree_size"] == 0
    assert page.json()["entries"] == []
    missing = await audit_client.get("/audit/proof/0", headers={**TOKEN, "X-Tenant-ID": b})
    assert missing.status_code == 404
    anonymous = await audit_client.get("/audit/entries", headers={"X-Tenant-ID": a})
    assert anonymous.status_code == 401

"""ADMIN sessions at CRITICAL/QUANTUM: a passkey at creation, a fresh one for admin actions."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from tenantry.access.manager import AccessControl
from tenantry.cache import CacheManager
from tenantry.db.engine import Database
from tenantry.errors import AuthenticationError
from tenantry.levels import SecurityLevel
from tenantry.passkeys.manager import PasskeyManager
from tenantry.sessions.manager import SessionManager
from tenantry.sessions.schemas import SessionPolicy, SessionType
from tests.conftest import TOKEN, NewTenant
from tests.passkeys.authenticator import SoftAuthenticator
from tests.passkeys.helpers import assertion_for, register


async def test_admin_session_needs_a_passkey(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    passkeys = PasskeyManager(db, rp_id="localhost", origin="http://localhost:8000")
    manager = SessionManager(db, cache=CacheManager(), passkeys=passkeys)
    auth = SoftAuthenticator("http://localhost:8000")
    await register(passkeys, auth, tenant, "root")
    with pytest.raises(AuthenticationError, match="passkey"):
        await manager.create_session(tenant, "root", SessionType.ADMIN, SecurityLevel.CRITICAL)
    challenge_id, credential = await assertion_for(passkeys, auth, tenant, "root")
    session_id, token = await manager.create_session(
        tenant,
        "root",
        SessionType.ADMIN,
        SecurityLevel.CRITICAL,
        passkey_challenge_id=challenge_id,
        passkey_credential=credential,
    )
    principal = await manager.validate(token)
    assert principal.step_up_at is not None
    assert not manager.needs_step_up(principal)
    later = principal.step_up_at + timedelta(minutes=6)
    assert manager.needs_step_up(principal, now=later)
    # A replayed assertion (same challenge) is refused.
    with pytest.raises(AuthenticationError):
        await manager.create_session(
            tenant,
            "root",
            SessionType.ADMIN,
            SecurityLevel.QUANTUM,
            passkey_challenge_id=challenge_id,
            passkey_credential=credential,
        )
    assert session_id


async def test_admin_actions_need_a_fresh_step_up_over_http(
    client: httpx.AsyncClient, db: Database
) -> None:
    tenant = f"su-{uuid.uuid4().hex[:10]}"
    platform = {**TOKEN, "X-Tenant-ID": tenant}
    assert (
        await client.post("/tenants", json={"id": tenant, "display_name": "x"}, headers=TOKEN)
    ).status_code == 201
    await AccessControl(db).grant(tenant, "root", "admin")
    auth = SoftAuthenticator("http://localhost:8000")
    options = await client.post(
        "/passkeys/register/options",
        json={"user_id": "root", "user_name": "root@label"},
        headers=platform,
    )
    assert options.status_code == 200, options.text
    body = options.json()
    verified = await client.post(
        "/passkeys/register/verify",
        json={
            "user_id": "root",
            "challenge_id": body["challenge_id"],
            "credential": auth.create(body["options"]),
        },
        headers=platform,
    )
    assert verified.status_code in (200, 201), verified.text

    async def assertion(headers: dict[str, str], user: bool = True) -> dict[str, object]:
        payload = {"user_id": "root"} if user else {}
        opts = await client.post("/passkeys/authenticate/options", json=payload, headers=headers)
        assert opts.status_code == 200, opts.text
        data = opts.json()
        return {"challenge_id": data["challenge_id"], "credential": auth.get(data["options"])}

    first = await assertion(platform)
    created = await client.post(
        "/sessions/create",
        json={
            "tenant_id": tenant,
            "user_id": "root",
            "session_type": "admin",
            "security_level": "critical",
            "passkey_challenge_id": first["challenge_id"],
            "passkey_credential": first["credential"],
        },
        headers=platform,
    )
    assert created.status_code == 201, created.text
    sid, token = created.json()["session_id"], created.json()["token"]
    admin = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/users/root/sessions", headers=admin)).status_code == 200

    # Age the step-up: the admin action now asks for a fresh assertion.
    state = client._transport.app.state.tenantry  # type: ignore[attr-defined]
    state.sessions.policy = SessionPolicy(step_up_max_age=timedelta(0))
    stale = await client.get("/users/root/sessions", headers=admin)
    assert stale.status_code == 401
    assert stale.json()["title"] == "step-up authentication required"
    state.sessions.policy = SessionPolicy()
    fresh = await assertion(admin, user=False)
    stepped = await client.post(f"/sessions/{sid}/step-up", json=fresh, headers=admin)
    assert stepped.status_code == 204, stepped.text
    assert (await client.get("/users/root/sessions", headers=admin)).status_code == 200

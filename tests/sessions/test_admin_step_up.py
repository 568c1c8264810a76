"""ADMIN sessions at CRITICAL/QUANTUM: a passkey at creation, a fresh one for admin actions."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
import pytest

from tenantry.access.manager import AccessControl
from tenantry.cache import CacheManager
from tenantry.db.engine import Database
from tenantry.errors import AuthenticationError, InvalidInput
from tenantry.levels import SecurityLevel
from tenantry.passkeys.manager import PasskeyManager
from tenantry.principal import ClientInfo
from tenantry.sessions.manager import SessionManager
from tenantry.sessions.schemas import SessionPolicy, SessionType
from tests.conftest import TOKEN, NewTenant
from tests.passkeys.authenticator import SoftAuthenticator
from tests.passkeys.helpers import assertion_for, register

LAPTOP = ClientInfo(device_id="root-laptop")


async def test_admin_session_needs_a_passkey(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    passkeys = PasskeyManager(db, rp_id="localhost", origin="http://localhost:8000")
    manager = SessionManager(db, cache=CacheManager(), passkeys=passkeys)
    auth = SoftAuthenticator("http://localhost:8000")
    await register(passkeys, auth, tenant, "root")
    with pytest.raises(AuthenticationError, match="passkey"):
        await manager.create_session(
            tenant, "root", SessionType.ADMIN, SecurityLevel.CRITICAL, client=LAPTOP
        )
    challenge_id, credential = await assertion_for(passkeys, auth, tenant, "root")
    session_id, token = await manager.create_session(
        tenant,
        "root",
        SessionType.ADMIN,
        SecurityLevel.CRITICAL,
        client=LAPTOP,
        passkey_challenge_id=challenge_id,
        passkey_credential=credential,
    )
    principal = await manager.validate(token, client=LAPTOP)
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
            client=LAPTOP,
            passkey_challenge_id=challenge_id,
            passkey_credential=credential,
        )
    assert session_id


Assertion = Callable[..., Awaitable[dict[str, object]]]


async def admin_with_passkey(client: httpx.AsyncClient, db: Database) -> tuple[str, Assertion]:
    """A tenant whose admin ``root`` has a passkey: (tenant, a function making assertions)."""
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

    async def assertion(headers: dict[str, str] = platform, user: bool = True) -> dict[str, object]:
        payload = {"user_id": "root"} if user else {}
        opts = await client.post("/passkeys/authenticate/options", json=payload, headers=headers)
        assert opts.status_code == 200, opts.text
        data = opts.json()
        return {"challenge_id": data["challenge_id"], "credential": auth.get(data["options"])}

    return tenant, assertion


async def open_admin_session(
    client: httpx.AsyncClient, tenant: str, assertion: Assertion, device: str | None
) -> httpx.Response:
    first = await assertion()
    body = {
        "tenant_id": tenant,
        "user_id": "root",
        "session_type": "admin",
        "security_level": "critical",
        "passkey_challenge_id": first["challenge_id"],
        "passkey_credential": first["credential"],
    }
    if device is not None:
        body["client"] = {"device_id": device}
    return await client.post(
        "/sessions/create", json=body, headers={**TOKEN, "X-Tenant-ID": tenant}
    )


async def laptop_admin(
    client: httpx.AsyncClient, db: Database
) -> tuple[str, dict[str, str], Assertion]:
    """root's ADMIN/CRITICAL session on "root-laptop": (its id, its headers, assertions)."""
    tenant, assertion = await admin_with_passkey(client, db)
    created = await open_admin_session(client, tenant, assertion, "root-laptop")
    assert created.status_code == 201, created.text
    sid, token = created.json()["session_id"], created.json()["token"]
    return sid, {"Authorization": f"Bearer {token}", "X-Device-ID": "root-laptop"}, assertion


async def test_admin_actions_need_a_fresh_step_up_over_http(
    client: httpx.AsyncClient, db: Database
) -> None:
    """A device-bound ADMIN/CRITICAL session steps up from its device, and stays usable."""
    sid, admin, assertion = await laptop_admin(client, db)
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
    assert (await client.get(f"/sessions/{sid}/validate", headers=admin)).status_code == 200


async def test_a_user_session_of_an_admin_steps_up_before_admin_actions(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Issue 12, item 2: step-up was decided by the session's label, so a USER/HIGH session of an
    admin did admin actions without any passkey. The roles it carries decide now."""
    tenant, assertion = await admin_with_passkey(client, db)
    created = await client.post(
        "/sessions/create", json={"user_id": "root"}, headers={**TOKEN, "X-Tenant-ID": tenant}
    )
    assert created.status_code == 201, created.text
    sid, token = created.json()["session_id"], created.json()["token"]
    root = {"Authorization": f"Bearer {token}"}
    for method, path in (("GET", "/users/root/sessions"), ("PUT", "/roles/eve/admin")):
        stale = await client.request(method, path, headers=root)
        assert stale.status_code == 401, (path, stale.text)
        assert stale.json()["title"] == "step-up authentication required"
    assert (await client.get("/settings", headers=root)).status_code == 200  # not an admin action
    assert (await client.get("/roles/eve", headers={**TOKEN, "X-Tenant-ID": tenant})).json()[
        "roles"
    ] == []

    stepped = await client.post(
        f"/sessions/{sid}/step-up", json=await assertion(root, user=False), headers=root
    )
    assert stepped.status_code == 204, stepped.text
    assert (await client.get("/users/root/sessions", headers=root)).status_code == 200
    assert (await client.put("/roles/eve/admin", headers=root)).status_code == 200


async def test_a_step_up_from_another_device_is_refused_and_revokes(
    client: httpx.AsyncClient, db: Database
) -> None:
    sid, admin, assertion = await laptop_admin(client, db)
    fresh = await assertion(admin, user=False)
    stolen = {**admin, "X-Device-ID": "someone-elses-phone"}
    refused = await client.post(f"/sessions/{sid}/step-up", json=fresh, headers=stolen)
    assert refused.status_code == 401
    assert "another device" in refused.json()["detail"]
    after = await client.get(f"/sessions/{sid}/validate", headers=admin)
    assert after.status_code == 401
    assert "revoked" in after.json()["detail"]


async def test_step_up_in_the_library_sees_the_client(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    passkeys = PasskeyManager(db, rp_id="localhost", origin="http://localhost:8000")
    manager = SessionManager(db, cache=CacheManager(), passkeys=passkeys)
    auth = SoftAuthenticator("http://localhost:8000")
    await register(passkeys, auth, tenant, "root")
    challenge_id, credential = await assertion_for(passkeys, auth, tenant, "root")
    session_id, token = await manager.create_session(
        tenant,
        "root",
        SessionType.ADMIN,
        SecurityLevel.QUANTUM,
        client=LAPTOP,
        passkey_challenge_id=challenge_id,
        passkey_credential=credential,
    )
    before = (await manager.validate(token, client=LAPTOP)).step_up_at
    # A step-up's challenge is issued for the session.
    challenge_id, options = await passkeys.authentication_options(
        tenant, "root", session_id=session_id
    )
    await manager.step_up(token, challenge_id, auth.get(options), client=LAPTOP)
    after = (await manager.validate(token, client=LAPTOP)).step_up_at
    assert before is not None
    assert after is not None
    assert after >= before
    challenge_id, options = await passkeys.authentication_options(
        tenant, "root", session_id=session_id
    )
    credential = auth.get(options)
    with pytest.raises(AuthenticationError, match="another device"):
        await manager.step_up(token, challenge_id, credential)  # no device: not the session's
    with pytest.raises(AuthenticationError, match="revoked"):
        await manager.validate(token, client=LAPTOP)


async def test_a_strong_session_needs_a_device_id(
    client: httpx.AsyncClient, db: Database, new_tenant: NewTenant
) -> None:
    """A session bound to its device is created with one: refused otherwise, nothing stored."""
    tenant = (await new_tenant()).id
    manager = SessionManager(db, cache=CacheManager())
    for level in (SecurityLevel.CRITICAL, SecurityLevel.QUANTUM):
        for client_info in (None, ClientInfo(), ClientInfo(device_id="  ")):
            with pytest.raises(InvalidInput, match="device"):
                await manager.create_session(tenant, "u1", security_level=level, client=client_info)
    assert await manager.list_sessions(tenant, "u1") == []
    _, token = await manager.create_session(tenant, "u1", security_level="critical", client=LAPTOP)
    await manager.validate(token, client=LAPTOP)

    # Over HTTP: 422 without a device id (an ADMIN one before its passkey is even looked at).
    tenant, assertion = await admin_with_passkey(client, db)
    platform = {**TOKEN, "X-Tenant-ID": tenant}
    refused = await open_admin_session(client, tenant, assertion, None)
    assert refused.status_code == 422, refused.text
    assert "device_id" in refused.json()["detail"]
    body = {"tenant_id": tenant, "user_id": "u1", "security_level": "quantum"}
    refused = await client.post("/sessions/create", json=body, headers=platform)
    assert refused.status_code == 422, refused.text
    for user in ("root", "u1"):
        listed = await client.get(f"/users/{user}/sessions", headers=platform)
        assert listed.json() == []
    body["client"] = {"device_id": "kiosk-3"}
    made = await client.post("/sessions/create", json=body, headers=platform)
    assert made.status_code == 201, made.text
    sid, token = made.json()["session_id"], made.json()["token"]
    bound = {"Authorization": f"Bearer {token}", "X-Device-ID": "kiosk-3"}
    assert (await client.get(f"/sessions/{sid}/validate", headers=bound)).status_code == 200

"""PasskeyManager's ceremonies on the embedded PostgreSQL, driven by the software authenticator."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from tenantry.audit.trail import trail_for
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import AuthenticationError, NotFound
from tenantry.passkeys.ceremony import user_handle
from tenantry.passkeys.manager import PasskeyManager
from tenantry.passkeys.models import webauthn_challenges
from tests.conftest import NewTenant
from tests.passkeys.authenticator import FLAG_AT, FLAG_UP, SoftAuthenticator, b64url
from tests.passkeys.conftest import ORIGIN, RP_ID
from tests.passkeys.helpers import assertion_for, register, stored_count


async def test_registration_then_authentication(
    manager: PasskeyManager, authenticator: SoftAuthenticator, new_tenant: NewTenant, db: Database
) -> None:
    tenant = (await new_tenant("pk")).id
    challenge_id, options = await manager.registration_options(tenant, "u-1", "ada@label.test")
    assert options["rp"] == {"name": "tenantry", "id": RP_ID}
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert options["user"]["id"] == b64url(user_handle(tenant, "u-1"))
    assert options["excludeCredentials"] == []
    assert {"type": "public-key", "alg": -7} in options["pubKeyCredParams"]

    created = await manager.verify_registration(
        tenant, "u-1", challenge_id, json.dumps(authenticator.create(options))
    )
    assert created.user_id == "u-1"
    assert created.sign_count == 0
    assert created.transports == ["hybrid", "internal"]
    assert created.aaguid == "7e5a1d2c-9b3f-4e6a-8c0d-1e2f3a4b5c6d"
    assert await manager.list_credentials(tenant, "u-1") == [created]

    # A second registration excludes the first credential.
    _, again = await manager.registration_options(tenant, "u-1", "ada@label.test")
    assert [c["id"] for c in again["excludeCredentials"]] == [created.credential_id]

    challenge_id, request = await manager.authentication_options(tenant, "u-1")
    assert request["userVerification"] == "required"
    assert request["rpId"] == RP_ID
    assert [c["id"] for c in request["allowCredentials"]] == [created.credential_id]
    before = datetime.now(UTC)
    assertion = await manager.verify_authentication(
        tenant, "u-1", challenge_id, authenticator.get(request)
    )
    assert assertion.credential_id == created.credential_id
    assert (assertion.user_id, assertion.tenant_id) == ("u-1", tenant)
    assert assertion.new_sign_count == 1
    assert assertion.verified_at >= before
    assert await stored_count(manager, tenant) == 1
    [listed] = await manager.list_credentials(tenant, "u-1")
    assert listed.last_used_at is not None

    await manager.delete_credential(tenant, "u-1", created.credential_id)
    assert await manager.list_credentials(tenant, "u-1") == []
    with pytest.raises(NotFound):
        await manager.delete_credential(tenant, "u-1", created.credential_id)
    with pytest.raises(NotFound, match="no passkey"):
        await manager.authentication_options(tenant, "u-1")
    # Each change is in the tenant's audit log (the refused delete is not).
    entries = await trail_for(db).audit_log.entries(tenant)
    audited = [(e.entry.action, e.entry.actor, e.entry.resource) for e in entries if e.entry]
    resource = f"passkey:{created.credential_id}"
    assert audited == [
        ("passkey.register", "u-1", resource),
        ("passkey.authenticate", "u-1", resource),
        ("passkey.delete", "system", resource),
    ]


async def test_raw_id_must_be_the_attested_credential_id(
    manager: PasskeyManager, authenticator: SoftAuthenticator, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("pk")).id
    first = await register(manager, authenticator, tenant, "u-1")
    challenge_id, options = await manager.registration_options(tenant, "u-1", "ada")
    swapped = SoftAuthenticator(ORIGIN).create(options)  # a new credential, labelled as the old
    swapped["id"] = swapped["rawId"] = first.credential_id
    with pytest.raises(AuthenticationError, match="attested credential id"):
        await manager.verify_registration(tenant, "u-1", challenge_id, swapped)
    assert await manager.list_credentials(tenant, "u-1") == [first]


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        ({"flags": FLAG_UP | FLAG_AT}, "User verification is required"),
        ({"origin": "https://evil.example"}, "origin"),
        ({"rp_id": "evil.example"}, "RP ID"),
        ({"challenge": b"\x01" * 32}, "challenge"),
        ({"kind": "webauthn.get"}, "client data type"),
    ],
)
async def test_refused_registrations_store_nothing(
    manager: PasskeyManager,
    authenticator: SoftAuthenticator,
    new_tenant: NewTenant,
    spoil: dict[str, Any],
    message: str,
) -> None:
    tenant = (await new_tenant("pk")).id
    challenge_id, options = await manager.registration_options(tenant, "u-1", "ada")
    with pytest.raises(AuthenticationError, match=message):
        await manager.verify_registration(
            tenant, "u-1", challenge_id, authenticator.create(options, **spoil)
        )
    assert await manager.list_credentials(tenant, "u-1") == []
    # The challenge was consumed by the refused attempt.
    with pytest.raises(AuthenticationError, match="unknown or already used"):
        await manager.verify_registration(
            tenant, "u-1", challenge_id, authenticator.create(options)
        )


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        ({"flags": FLAG_UP}, "User verification is required"),
        ({"flags": 0}, "User was not present"),
        ({"origin": "https://evil.example"}, "origin"),
        ({"rp_id": "evil.example"}, "RP ID"),
        ({"challenge": b"\x01" * 32}, "challenge"),
        ({"kind": "webauthn.create"}, "client data type"),
    ],
)
async def test_refused_assertions_change_nothing(
    manager: PasskeyManager,
    authenticator: SoftAuthenticator,
    new_tenant: NewTenant,
    spoil: dict[str, Any],
    message: str,
) -> None:
    tenant = (await new_tenant("pk")).id
    await register(manager, authenticator, tenant, "u-1")
    challenge_id, response = await assertion_for(manager, authenticator, tenant, "u-1", **spoil)
    with pytest.raises(AuthenticationError, match=message):
        await manager.verify_authentication(tenant, "u-1", challenge_id, response)
    assert await stored_count(manager, tenant) == 0


async def test_a_forged_signature_is_refused(
    manager: PasskeyManager, authenticator: SoftAuthenticator, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("pk")).id
    await register(manager, authenticator, tenant, "u-1")
    forger = authenticator.clone()  # the credential ids, but other private keys
    for credential in forger.credentials.values():
        credential.private_key = ec.generate_private_key(ec.SECP256R1())
    challenge_id, response = await assertion_for(manager, forger, tenant, "u-1")
    with pytest.raises(AuthenticationError, match="signature"):
        await manager.verify_authentication(tenant, "u-1", challenge_id, response)


async def test_challenges_are_single_use_and_expire(
    db: Database, authenticator: SoftAuthenticator, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("pk")).id
    manager = PasskeyManager(db, rp_id=RP_ID, origin=ORIGIN)
    await register(manager, authenticator, tenant, "u-1")
    challenge_id, options = await manager.authentication_options(tenant, "u-1")
    await manager.verify_authentication(tenant, "u-1", challenge_id, authenticator.get(options))
    with pytest.raises(AuthenticationError, match="unknown or already used"):
        await manager.verify_authentication(tenant, "u-1", challenge_id, authenticator.get(options))

    hasty = PasskeyManager(db, rp_id=RP_ID, origin=ORIGIN, challenge_ttl=0.2)
    challenge_id, options = await hasty.authentication_options(tenant, "u-1")
    await asyncio.sleep(0.3)
    with pytest.raises(AuthenticationError, match="expired"):
        await hasty.verify_authentication(tenant, "u-1", challenge_id, authenticator.get(options))

    # A challenge is for one user and one purpose.
    challenge_id, options = await manager.authentication_options(tenant, "u-1")
    with pytest.raises(AuthenticationError, match="unknown"):
        await manager.verify_authentication(tenant, "u-2", challenge_id, authenticator.get(options))
    with pytest.raises(AuthenticationError, match="unknown"):
        await manager.verify_registration(
            tenant,
            "u-1",
            challenge_id,
            authenticator.create({**options, "rp": {}, "user": {"id": "AA"}}),
        )
    # Bound to a session: only that session may answer it.
    challenge_id, options = await manager.authentication_options(tenant, "u-1", session_id="s-1")
    with pytest.raises(AuthenticationError, match="another session"):
        await manager.verify_authentication(tenant, "u-1", challenge_id, authenticator.get(options))
    challenge_id, options = await manager.authentication_options(tenant, "u-1", session_id="s-1")
    await manager.verify_authentication(
        tenant, "u-1", challenge_id, authenticator.get(options), session_id="s-1"
    )


async def test_expired_challenges_are_purged(
    db: Database, authenticator: SoftAuthenticator, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("pk")).id
    hasty = PasskeyManager(db, rp_id=RP_ID, origin=ORIGIN, challenge_ttl=0.1)
    await hasty.registration_options(tenant, "u-1", "ada")
    await asyncio.sleep(0.2)
    await hasty.registration_options(tenant, "u-1", "ada")
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            rows = (await conn.execute(select(webauthn_challenges.c.expires_at))).all()
    assert len(rows) == 1
    assert rows[0].expires_at > datetime.now(UTC) - timedelta(seconds=1)

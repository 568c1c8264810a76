"""Helpers of the passkeys tests: run a ceremony with the software authenticator."""

from __future__ import annotations

from typing import Any

from tenantry.db.engine import Database
from tenantry.passkeys.manager import PasskeyManager
from tenantry.passkeys.schemas import PasskeyCredential
from tenantry.sessions.manager import SessionManager
from tests.passkeys.authenticator import SoftAuthenticator, unb64url

__all__ = ["assertion_for", "raw", "register", "stepped_up_session", "stored_count"]

#: The relying party of the test app (``tests/conftest.py``) and of these helpers.
ORIGIN = "http://localhost:8000"


async def register(
    manager: PasskeyManager, auth: SoftAuthenticator, tenant_id: str, user_id: str
) -> PasskeyCredential:
    challenge_id, options = await manager.registration_options(tenant_id, user_id, f"{user_id}@x")
    return await manager.verify_registration(tenant_id, user_id, challenge_id, auth.create(options))


async def assertion_for(
    manager: PasskeyManager, auth: SoftAuthenticator, tenant_id: str, user_id: str, **spoil: Any
) -> tuple[str, dict[str, Any]]:
    challenge_id, options = await manager.authentication_options(tenant_id, user_id)
    return challenge_id, auth.get(options, **spoil)


async def stepped_up_session(db: Database, tenant_id: str, user_id: str, **create: Any) -> str:
    """The token of a session of ``user_id`` opened with a passkey (registered now), so admin
    actions need no step-up for the next minutes; ``create``: more ``create_session`` args."""
    passkeys = PasskeyManager(db, rp_id="localhost", origin=ORIGIN)
    auth = SoftAuthenticator(ORIGIN)
    await register(passkeys, auth, tenant_id, user_id)
    challenge_id, credential = await assertion_for(passkeys, auth, tenant_id, user_id)
    _, token = await SessionManager(db, passkeys=passkeys).create_session(
        tenant_id,
        user_id,
        passkey_challenge_id=challenge_id,
        passkey_credential=credential,
        **create,
    )
    return token


async def stored_count(manager: PasskeyManager, tenant_id: str, user_id: str = "u-1") -> int:
    [credential] = await manager.list_credentials(tenant_id, user_id)
    return credential.sign_count


def raw(credential_id: str) -> bytes:
    return unb64url(credential_id)

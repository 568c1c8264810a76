"""Helpers of the passkeys tests: run a ceremony with the software authenticator."""

from __future__ import annotations

from typing import Any

from tenantry.passkeys.manager import PasskeyManager
from tenantry.passkeys.schemas import PasskeyCredential
from tests.passkeys.authenticator import SoftAuthenticator, unb64url

__all__ = ["assertion_for", "raw", "register", "stored_count"]


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


async def stored_count(manager: PasskeyManager, tenant_id: str, user_id: str = "u-1") -> int:
    [credential] = await manager.list_credentials(tenant_id, user_id)
    return credential.sign_count


def raw(credential_id: str) -> bytes:
    return unb64url(credential_id)

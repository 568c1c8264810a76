"""HTTP routes of the passkeys domain: the two WebAuthn ceremonies, options then verify.

Whose passkeys: a SESSION (or API key) principal acts for itself only (a ``user_id`` in the body
must be its own); the platform backend (service token + ``X-Tenant-ID``) names the user in the
body. Authentication challenges asked for by a session are bound to that session.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from tenantry.actions import PASSKEYS_AUTHENTICATE, PASSKEYS_REGISTER
from tenantry.errors import InvalidInput, PermissionDenied
from tenantry.http import Route, provided, require
from tenantry.passkeys.manager import PasskeyManager
from tenantry.passkeys.schemas import (
    AuthenticationOptionsRequest,
    AuthenticationVerifyRequest,
    CeremonyOptions,
    PasskeyAssertion,
    PasskeyCredential,
    RegistrationOptionsRequest,
    RegistrationVerifyRequest,
)
from tenantry.principal import Principal, PrincipalKind

__all__ = ["PasskeysDep", "router"]

router = APIRouter(prefix="/passkeys", tags=["passkeys"], route_class=Route)

Registrant = Annotated[Principal, require(PASSKEYS_REGISTER)]
Authenticator = Annotated[Principal, require(PASSKEYS_AUTHENTICATE)]


#: The app's PasskeyManager (``state.tenantry.passkeys``, made in the lifespan).
PasskeysDep = Annotated[PasskeyManager, Depends(provided("passkeys"))]


def _user(principal: Principal, requested: str | None) -> str:
    if principal.kind is PrincipalKind.SERVICE:
        if requested is None:
            raise InvalidInput("user_id is required when the service token acts for a tenant")
        return requested
    if requested is not None and requested != principal.principal_id:
        raise PermissionDenied("a session can only register and use its own passkeys")
    return principal.principal_id


def _session(principal: Principal) -> str | None:
    return principal.session_id if principal.kind is PrincipalKind.SESSION else None


@router.post("/register/options")
async def registration_options(
    body: RegistrationOptionsRequest, principal: Registrant, passkeys: PasskeysDep
) -> CeremonyOptions:
    challenge_id, options = await passkeys.registration_options(
        principal.tenant_id,
        _user(principal, body.user_id),
        body.user_name,
        display_name=body.display_name,
    )
    return CeremonyOptions(challenge_id=challenge_id, options=options)


@router.post("/register/verify", status_code=status.HTTP_201_CREATED)
async def verify_registration(
    body: RegistrationVerifyRequest, principal: Registrant, passkeys: PasskeysDep
) -> PasskeyCredential:
    return await passkeys.verify_registration(
        principal.tenant_id, _user(principal, body.user_id), body.challenge_id, body.credential
    )


@router.post("/authenticate/options")
async def authentication_options(
    body: AuthenticationOptionsRequest, principal: Authenticator, passkeys: PasskeysDep
) -> CeremonyOptions:
    challenge_id, options = await passkeys.authentication_options(
        principal.tenant_id, _user(principal, body.user_id), session_id=_session(principal)
    )
    return CeremonyOptions(challenge_id=challenge_id, options=options)


@router.post("/authenticate/verify")
async def verify_authentication(
    body: AuthenticationVerifyRequest, principal: Authenticator, passkeys: PasskeysDep
) -> PasskeyAssertion:
    return await passkeys.verify_authentication(
        principal.tenant_id,
        _user(principal, body.user_id),
        body.challenge_id,
        body.credential,
        session_id=_session(principal),
    )

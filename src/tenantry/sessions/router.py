"""HTTP routes of sessions and API keys (the documents' Session API)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response, status

from tenantry.access.probes import ensure_own_tenant
from tenantry.errors import AuthenticationError
from tenantry.http import Route, SessionCredential, client_info, provided, public, require
from tenantry.principal import Principal, PrincipalKind
from tenantry.sessions.api_keys import ApiKeys
from tenantry.sessions.manager import SessionManager
from tenantry.sessions.schemas import (
    ApiKeyCreate,
    ApiKeyInfo,
    IssuedApiKey,
    RevokeOthers,
    SessionCreate,
    SessionInfo,
    SessionIssued,
    StepUp,
)
from tenantry.sessions.tokens import tenant_of_id

__all__ = ["router"]

router = APIRouter(tags=["sessions"], route_class=Route)
SessionId = Annotated[str, Path(min_length=5, max_length=200)]
UserId = Annotated[str, Path(min_length=1, max_length=200)]


SessionsDep = Annotated[SessionManager, Depends(provided("sessions"))]
ApiKeysDep = Annotated[ApiKeys, Depends(provided("api_keys"))]


async def _own_tenant(request: Request, principal: Principal, identifier: str, prefix: str) -> None:
    """An id naming another tenant is a probe: recorded, and 404 as if it did not exist."""
    named = tenant_of_id(identifier, prefix)
    await ensure_own_tenant(principal, named, identifier[:200], request)


@router.post("/sessions/create", status_code=status.HTTP_201_CREATED)
async def create_session(
    body: SessionCreate,
    request: Request,
    principal: Annotated[Principal, require("sessions:create")],
    sessions: SessionsDep,
) -> SessionIssued:
    """Open a session for a user of the caller's tenant (the platform backend after its login).

    The session can do no more than the caller could; ``tenant_id`` may be left out (it is the
    caller's), and naming another tenant is a probe (recorded, 404).
    """
    if body.tenant_id is not None:
        await ensure_own_tenant(principal, body.tenant_id, f"tenant {body.tenant_id}", request)
    session_id, token = await sessions.create_session(
        principal.tenant_id,
        body.user_id,
        body.session_type,
        body.security_level,
        client=body.client,
        passkey_challenge_id=body.passkey_challenge_id,
        passkey_credential=body.passkey_credential,
        actor=principal.actor,
        minted_by=principal,
    )
    info = await sessions.session_info(session_id, tenant_id=principal.tenant_id)
    return SessionIssued(
        session_id=session_id,
        token=token,
        idle_expires_at=info.idle_expires_at,
        absolute_expires_at=info.absolute_expires_at,
    )


@router.get(
    "/sessions/{session_id}/validate",
    dependencies=[public("the session token in Authorization is the credential being checked")],
)
async def validate_session(
    session_id: SessionId, token: SessionCredential, request: Request, sessions: SessionsDep
) -> dict[str, Any]:
    principal = await sessions.validate(token, client=client_info(request))
    if principal.session_id != session_id:
        await _own_tenant(request, principal, session_id, "ses")
        raise AuthenticationError("the token does not belong to this session")
    return {
        "valid": True,
        "session_id": principal.session_id,
        "tenant_id": principal.tenant_id,
        "user_id": principal.principal_id,
        "session_type": principal.session_type,
        "security_level": principal.security_level,
        "roles": sorted(principal.roles),
    }


@router.post(
    "/sessions/{session_id}/step-up",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[public("the session token in Authorization and a passkey assertion")],
)
async def step_up(
    session_id: SessionId,
    body: StepUp,
    token: SessionCredential,
    request: Request,
    sessions: SessionsDep,
) -> Response:
    """Record a fresh passkey assertion on the session (admin step-up)."""
    client = client_info(request)
    principal = await sessions.validate(token, client=client)
    if principal.session_id != session_id:
        await _own_tenant(request, principal, session_id, "ses")
        raise AuthenticationError("the token does not belong to this session")
    await sessions.step_up(token, body.challenge_id, body.credential, client=client)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/sessions/{session_id}/analytics")
async def session_analytics(
    session_id: SessionId,
    request: Request,
    principal: Annotated[Principal, require("sessions:analytics")],
    sessions: SessionsDep,
) -> dict[str, Any]:
    await _own_tenant(request, principal, session_id, "ses")
    report: dict[str, Any] = await sessions.get_session_analytics(
        session_id, tenant_id=principal.tenant_id
    )
    return report


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_session(
    session_id: SessionId,
    request: Request,
    principal: Annotated[Principal, require("sessions:revoke")],
    sessions: SessionsDep,
) -> Response:
    await _own_tenant(request, principal, session_id, "ses")
    await sessions.revoke(
        session_id,
        tenant_id=principal.tenant_id,
        reason=f"revoked by {principal.principal_id}",
        actor=principal.actor,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users/{user_id}/sessions")
async def list_user_sessions(
    user_id: UserId,
    principal: Annotated[Principal, require("sessions:read")],
    sessions: SessionsDep,
) -> list[SessionInfo]:
    found: list[SessionInfo] = await sessions.list_sessions(principal.tenant_id, user_id)
    return found


@router.post("/users/{user_id}/sessions/revoke-others")
async def revoke_other_sessions(
    user_id: UserId,
    body: RevokeOthers,
    principal: Annotated[Principal, require("sessions:revoke")],
    sessions: SessionsDep,
) -> dict[str, int]:
    keep = body.except_session
    if (
        keep is None
        and principal.kind is PrincipalKind.SESSION
        and principal.principal_id == user_id
    ):
        keep = principal.session_id  # "sign out everywhere else"
    count = await sessions.revoke_all(
        principal.tenant_id, user_id, except_session=keep, actor=principal.actor
    )
    return {"revoked": count}


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, tags=["api keys"])
async def create_api_key(
    body: ApiKeyCreate,
    principal: Annotated[Principal, require("api_keys:manage")],
    api_keys: ApiKeysDep,
) -> IssuedApiKey:
    expires = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    issued: IssuedApiKey = await api_keys.create(
        principal.tenant_id,
        body.name,
        body.service_account,
        scopes=body.scopes,
        expires_in=expires,
        actor=principal.actor,
    )
    return issued


@router.get("/api-keys", tags=["api keys"])
async def list_api_keys(
    principal: Annotated[Principal, require("api_keys:manage")], api_keys: ApiKeysDep
) -> list[ApiKeyInfo]:
    keys: list[ApiKeyInfo] = await api_keys.list(principal.tenant_id)
    return keys


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["api keys"])
async def revoke_api_key(
    key_id: Annotated[str, Path(min_length=5, max_length=200)],
    request: Request,
    principal: Annotated[Principal, require("api_keys:manage")],
    api_keys: ApiKeysDep,
) -> Response:
    await _own_tenant(request, principal, key_id, "key")
    await api_keys.revoke(principal.tenant_id, key_id, actor=principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

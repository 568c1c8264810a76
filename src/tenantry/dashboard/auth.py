"""Who is looking at the dashboard: its sign-in cookie, or a bearer credential, checked on every
call.

A browser signs in once (``POST /dashboard/sign-in``) and then holds an HttpOnly, SameSite=Strict
cookie (Secure over https) that its script can neither read nor send elsewhere:

- a tenant admin's cookie carries their session token (and the device it is bound to); every data
  call validates it again through the app's gate, so a revoked or expired session, a removed
  admin role or a suspended tenant ends the sign-in at once, and the tenant's request rate applies;
- a platform operator's cookie carries no secret: an expiry and a nonce, signed (HMAC-SHA256) with
  a key derived from the service token, good for :data:`PLATFORM_HOURS` hours (rotating the
  service token ends every one of them).

Without the cookie the data route takes the API's bearer credentials too (a session token, or the
service token: alone for every tenant, with ``X-Tenant-ID`` for one), so scripts and the HTTP
isolation suite reach it as they reach any route. The tenant a viewer sees comes from its
credential alone: no parameter names one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tenantry.actions import DASHBOARD_READ
from tenantry.errors import AuthenticationError, PermissionDenied
from tenantry.http import bearer_credential
from tenantry.http.credentials import ANY_CREDENTIAL, DEVICE_ID
from tenantry.http.deps import ACTION_ATTRIBUTE
from tenantry.http.openapi import declare
from tenantry.http.problems import BACKEND
from tenantry.principal import PLATFORM_ROLE, Principal, PrincipalKind

__all__ = [
    "COOKIE",
    "PLATFORM_HOURS",
    "Viewer",
    "check_origin",
    "dashboard_viewer",
    "sign_in",
    "sign_out",
]

COOKIE = "tenantry_dashboard"
#: How long a platform operator's sign-in lasts.
PLATFORM_HOURS = 8
#: A tenant admin's cookie lasts as long as the browser; the session's own expiry decides.
_MAX_COOKIE = 200 + 4 * 128


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in viewer: its principal, and the tenant it sees (None: every tenant)."""

    principal: Principal
    tenant_id: str | None

    @property
    def who(self) -> str:
        return self.principal.actor


def _state(request: Request) -> Any:
    return request.app.state.tenantry


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _platform_key(api_token: str) -> bytes:
    return hashlib.sha256(b"tenantry-dashboard-v1\x00" + api_token.encode()).digest()


def _platform_cookie(api_token: str, now: float) -> str:
    body = _b64(
        json.dumps({"exp": int(now) + PLATFORM_HOURS * 3600, "n": secrets.token_hex(8)}).encode()
    )
    mac = hmac.new(_platform_key(api_token), body.encode(), hashlib.sha256).hexdigest()
    return f"p.{body}.{mac}"


def _check_platform_cookie(api_token: str, value: str, now: float) -> bool:
    _, body, mac = [*value.split("."), "", ""][:3]
    want = hmac.new(_platform_key(api_token), body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac.encode(), want.encode()):
        return False
    try:
        expiry = json.loads(_unb64(body))["exp"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(expiry, int) and now < expiry


def _session_cookie(token: str, device: str | None) -> str:
    return "s." + _b64(json.dumps({"t": token, "d": device}).encode())


def _with_device(request: Request, device: str | None) -> Request:
    """The request as the gate should see it: ``X-Device-ID`` the cookie's device, no other."""
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"x-device-id"]
    if device:
        headers.append((b"x-device-id", device.encode("latin-1", "replace")))
    return Request({**request.scope, "headers": headers})


def _may_view(principal: Principal, access: Any) -> None:
    """A tenant's admin (an ADMIN session, or a user holding a role with ``dashboard:read``), or
    the platform; never an API key."""
    if principal.kind is PrincipalKind.API_KEY:
        raise PermissionDenied("the dashboard is for admins' sessions and the service token")
    if principal.kind is PrincipalKind.SESSION and principal.session_type == "admin":
        return
    if not access.allowed(principal, DASHBOARD_READ):
        raise PermissionDenied(f"{DASHBOARD_READ} is not allowed for this caller")


async def _session_viewer(request: Request, token: str, device: str | None) -> Viewer:
    state = _state(request)
    if not token.startswith("tnt_s_"):
        raise AuthenticationError("sign in with an admin's session token or the service token")
    principal = await state.gate.authenticate(_with_device(request, device), token, None)
    _may_view(principal, state.access)
    return Viewer(principal, principal.tenant_id)


async def _from_cookie(request: Request, value: str) -> Viewer:
    state = _state(request)
    if len(value) > _MAX_COOKIE:
        raise AuthenticationError("the dashboard's sign-in is not valid: sign in again")
    if value.startswith("p."):
        if not _check_platform_cookie(state.api_token, value, time.time()):
            raise AuthenticationError("the dashboard's sign-in has expired: sign in again")
        return Viewer(_platform(), None)
    try:
        payload = json.loads(_unb64(value.removeprefix("s.")))
        token, device = str(payload["t"]), payload.get("d")
    except (ValueError, KeyError, TypeError) as exc:
        raise AuthenticationError("the dashboard's sign-in is not valid: sign in again") from exc
    return await _session_viewer(request, token, device if isinstance(device, str) else None)


def _platform() -> Principal:
    return Principal("", "dashboard", PrincipalKind.SERVICE, frozenset({PLATFORM_ROLE}))


async def dashboard_viewer(request: Request) -> Viewer:
    """The dashboard's viewer: its cookie, else its bearer credential; checked on every call."""
    state = _state(request)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        viewer = await _from_cookie(request, cookie)
    else:
        headers = request.headers
        credential = bearer_credential(
            headers.get("authorization"), "the dashboard's cookie, a session token or service token"
        )
        tenant = headers.get("x-tenant-id")
        if tenant is None and not credential.startswith(("tnt_s_", "tnt_k_")):
            state.gate.authenticate_platform(credential)
            viewer = Viewer(_platform(), None)
        else:
            principal = await state.gate.authenticate(request, credential, tenant)
            _may_view(principal, state.access)
            viewer = Viewer(principal, principal.tenant_id)  # the service token's: X-Tenant-ID
    if viewer.tenant_id is not None:
        request.state.tenant_id = viewer.tenant_id  # whose request it is, for its metrics
    return viewer


dashboard_viewer.__dict__[ACTION_ATTRIBUTE] = DASHBOARD_READ
declare(
    dashboard_viewer,
    security=ANY_CREDENTIAL,
    headers=[DEVICE_ID],
    problems=(401, 403, 404, 422, *BACKEND),
)


def check_origin(request: Request) -> None:
    """A sign-in or sign-out must come from the dashboard's own page: its ``Origin`` is this
    service's (a browser always sends it on a POST); else 403."""
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    if not origin or not host or origin != f"{request.url.scheme}://{host}":
        raise PermissionDenied("sign in from the dashboard's own page (its Origin is checked)")


async def sign_in(request: Request, response: Response, token: str, device: str | None) -> Viewer:
    """Check ``token`` and set the dashboard's cookie for it; the viewer signed in."""
    check_origin(request)
    state = _state(request)
    secure = request.url.scheme == "https"
    if token.startswith("tnt_s_"):
        viewer = await _session_viewer(request, token, device)
        value = _session_cookie(token, device)
        max_age = None
    elif token.startswith("tnt_k_"):
        raise PermissionDenied("the dashboard is for admins' sessions and the service token")
    else:
        state.gate.authenticate_platform(token)
        viewer = Viewer(_platform(), None)
        value, max_age = _platform_cookie(state.api_token, time.time()), PLATFORM_HOURS * 3600
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age,
        path="/dashboard",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    return viewer


def sign_out(request: Request, response: Response) -> None:
    """Drop the dashboard's cookie (the session itself is left alone: revoke it to end it)."""
    check_origin(request)
    response.delete_cookie(
        COOKIE,
        path="/dashboard",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )

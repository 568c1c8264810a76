"""The operator's web dashboard: its page, its static files, sign-in and sign-out, and its data.

The page and its files are public (they hold no figure); the data route
(``GET /dashboard/api/overview``) answers only a signed-in viewer
(:func:`~tenantry.dashboard.auth.dashboard_viewer`), checked on every call, with the figures of the
viewer's own tenant, or every tenant's for the platform. The page polls it every few seconds.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tenantry.dashboard.auth import Viewer, dashboard_viewer, sign_in, sign_out
from tenantry.dashboard.data import Overview, poll_seconds
from tenantry.http import Route, problems, public

__all__ = ["ASSETS", "router"]

router = APIRouter(route_class=Route, tags=["dashboard"])

#: The static files served, with their media types.
ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
#: The page runs only its own files: no inline script or style, nothing from elsewhere, no frame.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _read(name: str) -> bytes:
    return resources.files("tenantry.dashboard").joinpath("static", name).read_bytes()


class SignIn(BaseModel):
    """A credential to sign in with: a session token of a tenant's admin, or the service token."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=512)
    device_id: str | None = Field(
        default=None, max_length=128, description="the device the session is bound to, if any"
    )


class SignedIn(BaseModel):
    """Who is signed in, and what they see."""

    who: str
    tenant: str | None = Field(description="the tenant shown; null: every tenant (the platform)")
    poll_seconds: float


@router.get(
    "/dashboard",
    response_class=HTMLResponse,
    dependencies=[public("the dashboard's page: its sign-in form and empty charts, no figure")],
    summary="The web dashboard (sign in with an admin's session token or the service token)",
)
async def page() -> HTMLResponse:
    return HTMLResponse(
        _read("index.html"), headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    )


def _asset(name: str) -> Response:
    return Response(
        _read(name),
        media_type=ASSETS[name],
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
    )


_STATIC = [public("the dashboard's script and style sheet, the same for everyone")]


# One route a file, no path parameter: nothing but these files is ever read from the folder.
@router.get(
    "/dashboard/static/dashboard.js",
    responses={200: {"content": {"text/javascript": {"schema": {"type": "string"}}}}},
    response_class=Response,
    dependencies=_STATIC,
)
async def script() -> Response:
    return _asset("dashboard.js")


@router.get(
    "/dashboard/static/dashboard.css",
    responses={200: {"content": {"text/css": {"schema": {"type": "string"}}}}},
    response_class=Response,
    dependencies=_STATIC,
)
async def style_sheet() -> Response:
    return _asset("dashboard.css")


@router.post(
    "/dashboard/sign-in",
    dependencies=[public("signing in: the credential is in the body, checked here")],
    responses=problems(401, 403, 404, 429, 503),
)
async def dashboard_sign_in(request: Request, body: SignIn, response: Response) -> SignedIn:
    """Sets the dashboard's HttpOnly, SameSite=Strict cookie for the credential (its ``Origin``
    must be this service's). API keys are refused; sessions must be admins'."""
    viewer = await sign_in(request, response, body.token, body.device_id)
    return SignedIn(
        who=viewer.who, tenant=viewer.tenant_id, poll_seconds=poll_seconds(viewer.tenant_id)
    )


@router.post(
    "/dashboard/sign-out",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[public("signing out: drops the dashboard's cookie, nothing else")],
    responses=problems(403),
)
async def dashboard_sign_out(request: Request) -> Response:
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    sign_out(request, response)
    return response


def _overview(request: Request) -> Overview:
    state = request.app.state
    found: Overview | None = getattr(state, "dashboard", None)
    if found is None or found.state is not state.tenantry:
        found = Overview(state.tenantry)
        state.dashboard = found
    return found


@router.get("/dashboard/api/overview", summary="The signed-in viewer's figures")
async def overview(
    request: Request, viewer: Annotated[Viewer, Depends(dashboard_viewer)]
) -> JSONResponse:
    """Performance, security, business and operations: the viewer's tenant's, or every
    tenant's for the platform. Kept a few seconds per view; poll it no faster."""
    answer: dict[str, Any] = await _overview(request).view(viewer.tenant_id)
    body = {**answer, "who": viewer.who, "poll_seconds": poll_seconds(viewer.tenant_id)}
    return JSONResponse(body, headers={"Cache-Control": "no-store"})

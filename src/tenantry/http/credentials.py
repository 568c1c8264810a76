"""The credentials the service takes, as OpenAPI security schemes, and the headers they bring.

Every credential travels as ``Authorization: Bearer <credential>``; the schemes say which kinds a
route takes (a session token, an API key, the service token), and ``X-Tenant-ID`` names the
tenant the service token acts for, so it is a scheme of its own, sent *with* the service token.
The dependencies of :mod:`tenantry.http.deps` declare which of these requirements they check;
:class:`tenantry.http.openapi.Route` writes them into each operation, and Swagger UI's
*Authorize* dialog sends them. At run time nothing here is called: the dependencies read the
headers themselves, and :func:`~tenantry.http.gate.bearer_credential` parses the credential.
"""

from __future__ import annotations

from typing import Any

from fastapi.openapi.models import APIKey, HTTPBearer, SecurityScheme

__all__ = [
    "ANY_CREDENTIAL",
    "DEVICE_ID",
    "SCHEMES",
    "SERVICE_TOKEN_ALONE",
    "SESSION_TOKEN_ALONE",
    "Requirements",
]

#: An operation's security requirements: each item an alternative, its schemes sent together.
Requirements = list[dict[str, list[str]]]

SCHEMES: dict[str, SecurityScheme] = {
    "SessionToken": HTTPBearer(
        bearerFormat="tnt_s_<tenant>.<secret>",
        description=(
            "A user's session token (`POST /sessions/create` gives it to the platform backend). "
            "A session bound to a device also sends its `X-Device-ID`."
        ),
    ),
    "ApiKey": HTTPBearer(
        bearerFormat="tnt_k_<tenant>.<secret>",
        description="An API key of a tenant's service account (`POST /api-keys`), limited to its "
        "scopes.",
    ),
    "ServiceToken": HTTPBearer(
        description=(
            "The platform backend's service token (`TENANTRY_API_TOKEN`, or "
            "`<data dir>/api-token`). It acts for the tenant named by `X-Tenant-ID`; the "
            "platform's own routes (`/tenants`, `/metrics`, `/connections/health`) take it alone."
        ),
    ),
    "TenantId": APIKey.model_validate(
        {
            "in": "header",
            "name": "X-Tenant-ID",
            "description": (
                "The tenant the service token acts for. With a session token or API key it may "
                "be left out; naming another tenant than the credential's answers 404 (and is "
                "recorded)."
            ),
        }
    ),
}

#: ``require(action)``: any credential; the service token with the tenant it acts for.
ANY_CREDENTIAL: Requirements = [
    {"SessionToken": []},
    {"ApiKey": []},
    {"ServiceToken": [], "TenantId": []},
]
#: ``require_platform()``: the service token alone.
SERVICE_TOKEN_ALONE: Requirements = [{"ServiceToken": []}]
#: A route that checks the session token it is sent (validation, step-up).
SESSION_TOKEN_ALONE: Requirements = [{"SessionToken": []}]

#: ``X-Device-ID``, which a session token's validation reads (:func:`~tenantry.http.client_info`).
DEVICE_ID: dict[str, Any] = {
    "name": "X-Device-ID",
    "in": "header",
    "required": False,
    "description": (
        "The client's device (its first 128 characters). A session bound to a device (CRITICAL, "
        "QUANTUM) must send it with every request: another device, or none, revokes it."
    ),
    "schema": {"type": "string"},
}

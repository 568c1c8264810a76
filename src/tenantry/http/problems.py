"""The shape of every error answer (RFC 9457 problem details), and the ``responses`` declaring it.

Every error the service answers is ``application/problem+json``, built from :class:`Problem` by
``tenantry.api.errors``. :func:`problems` is how the OpenAPI schema declares such answers; a route
names with it only the errors of its own (``responses=problems(404)``), the common ones are
declared for it (:class:`tenantry.http.openapi.Route`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BACKEND", "MEANINGS", "PROBLEM_JSON", "Issue", "Problem", "problems"]

PROBLEM_JSON = "application/problem+json"
#: What any route that reaches the database can answer when it cannot be reached (503) or the
#: caller's tenant already uses its whole share of it (429).
BACKEND = (429, 503)

#: What each status means here: the description of every declared error answer.
MEANINGS: dict[int, str] = {
    400: "The request body could not be read (it is not UTF-8 text).",
    401: (
        "No credential, or not a valid one for this route (`WWW-Authenticate: Bearer`); also "
        "an admin action of a session (any type and level) without a fresh passkey step-up."
    ),
    403: "The credential is valid but may not do this, or its tenant is not active.",
    404: (
        "No such thing in the caller's tenant. Naming another tenant's (an id, or `X-Tenant-ID` "
        "with a session token or API key) answers the same, and is recorded."
    ),
    409: "The thing exists already, or its state forbids the change; retry a rolled-back write.",
    410: "The tenant's keys were destroyed: its audited changes can no longer be sealed.",
    413: "The request body is larger than the service accepts (`TENANTRY_MAX_BODY_BYTES`).",
    422: (
        "The request does not match the schema (`errors` names each field), or a value is invalid."
    ),
    429: "The tenant already uses its share of a backend; retry later.",
    503: "A backend (the database, Redis) cannot be reached; retry later.",
}


class Issue(BaseModel):
    """One way the request does not match the schema."""

    model_config = ConfigDict(extra="forbid")

    loc: list[str | int] = Field(description="Where: `body`, `query`, `path`, then names")
    msg: str
    type: str


class Problem(BaseModel):
    """An error answer: RFC 9457 problem details."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(default="about:blank", description="Always `about:blank`")
    title: str = Field(description="Short and stable for each kind of error")
    status: int = Field(description="The HTTP status")
    detail: str = Field(description="What went wrong, for a human")
    instance: str = Field(description="The path of the request")
    request_id: str | None = Field(
        default=None, description="The request's `X-Request-ID` (also a response header)"
    )
    errors: list[Issue] | None = Field(
        default=None, description="With 422 for a request that does not match the schema"
    )


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route for error answers of these ``statuses``: problem+json."""
    declared: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        answer: dict[str, Any] = {
            "description": MEANINGS[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status == 401:
            answer["headers"] = {
                "WWW-Authenticate": {
                    "description": "`Bearer`",
                    "schema": {"type": "string", "const": "Bearer"},
                }
            }
        declared[status] = answer
    return declared

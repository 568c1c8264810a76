"""Who is calling: the principal every authenticated request and library call carries, and the
client it calls from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PLATFORM_ROLE", "ClientInfo", "Principal", "PrincipalKind", "platform_principal"]

#: The role of the platform backend holding the service token (the operator's alone).
PLATFORM_ROLE = "platform"


class PrincipalKind(StrEnum):
    SERVICE = "service"  # the platform backend holding the service token, acting for a tenant
    SESSION = "session"  # a user (or admin) with a session token
    API_KEY = "api_key"  # a tenant's service account with an API key


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as authentication established it; authorization reads ``roles``."""

    tenant_id: str
    principal_id: str
    kind: PrincipalKind
    roles: frozenset[str]
    session_id: str | None = None
    session_type: str | None = None
    security_level: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    step_up_at: datetime | None = None
    #: The most this principal may do whatever its roles: the actions of the credential that
    #: minted its session (None: no ceiling).
    cap: frozenset[str] | None = None

    @property
    def actor(self) -> str:
        """Who this is in the audit log: ``<kind>:<principal id>`` (``session:alice``)."""
        return f"{self.kind.value}:{self.principal_id}"


def platform_principal(tenant_id: str = "") -> Principal:
    """The holder of the service token, acting for ``tenant_id`` (no tenant: the platform's own
    routes)."""
    return Principal(tenant_id, PLATFORM_ROLE, PrincipalKind.SERVICE, frozenset({PLATFORM_ROLE}))


class ClientInfo(BaseModel):
    """What a request says about its client: IP, user agent, device id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)
    device_id: str | None = Field(default=None, max_length=128)

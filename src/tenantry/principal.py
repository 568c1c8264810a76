"""Who is calling: the principal every authenticated request and library call carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = ["Principal", "PrincipalKind"]


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

    @property
    def actor(self) -> str:
        """Who this is in the audit log: ``<kind>:<principal id>`` (``session:alice``)."""
        return f"{self.kind.value}:{self.principal_id}"

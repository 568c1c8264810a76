"""Security events: what the other managers saw that may be an attack.

Kinds used so far: ``failed_validation``, ``foreign_tenant_probe``, ``revoked_token_use``,
``new_device``, ``device_mismatch``, ``session_limit``, ``step_up_failed``, ``anomaly``.
Events are tenant-owned rows like everything else; the threat analysis reads them per tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any
from weakref import WeakKeyDictionary

from pydantic import BaseModel, ConfigDict

from tenantry.context import tenant_scope
from tenantry.db.default import UsesDatabase
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput
from tenantry.threats.repository import SecurityEventsRepository

__all__ = ["EventListener", "SecurityEvent", "SecurityEvents", "Severity", "on_events"]


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class SecurityEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: int
    occurred_at: datetime
    kind: str
    severity: Severity
    principal_id: str | None
    session_id: str | None
    ip: str | None
    detail: dict[str, Any]


#: Told the tenant of every security event recorded on a database (see :func:`on_events`).
EventListener = Callable[[str], None]
_listeners: WeakKeyDictionary[Database, list[EventListener]] = WeakKeyDictionary()


def on_events(database: Database, listener: EventListener) -> None:
    """Call ``listener(tenant_id)`` after each security event recorded on ``database`` commits
    (the app's :class:`~tenantry.threats.watch.ThreatWatch` listens this way)."""
    _listeners.setdefault(database, []).append(listener)


class SecurityEvents(UsesDatabase):
    """Record and read a tenant's security events."""

    def __init__(self, database: Database | None = None) -> None:
        self._database = database

    async def record(
        self,
        tenant_id: str,
        kind: str,
        *,
        severity: Severity | str = Severity.LOW,
        principal_id: str | None = None,
        session_id: str | None = None,
        ip: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> SecurityEvent:
        if not kind or len(kind) > 64:
            raise InvalidInput("an event kind is 1-64 characters")
        level = Severity(severity)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                row = await SecurityEventsRepository(conn).add(
                    kind=kind,
                    severity=level.value,
                    principal_id=principal_id,
                    session_id=session_id,
                    ip=ip,
                    detail=detail or {},
                )
        for listener in _listeners.get(db, ()):
            listener(tenant_id)
        return SecurityEvent.model_validate(dict(row))

    async def since(
        self, tenant_id: str, since: datetime, *, kinds: tuple[str, ...] = ()
    ) -> list[SecurityEvent]:
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                rows = await SecurityEventsRepository(conn).since(since, kinds=kinds)
        return [SecurityEvent.model_validate(dict(r)) for r in rows]

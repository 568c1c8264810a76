"""What the app's lifespan creates and the routes use."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from tenantry.access.manager import AccessControl
from tenantry.cache.manager import CacheManager
from tenantry.config import Settings
from tenantry.connections.manager import ConnectionManager
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.passkeys.manager import PasskeyManager
from tenantry.security.audit import AuditLog
from tenantry.security.events import SecurityEvents
from tenantry.security.manager import SecurityManager
from tenantry.security.threats import ThreatAnalyzer
from tenantry.sessions.api_keys import ApiKeys
from tenantry.sessions.manager import SessionManager

__all__ = ["AppState"]


@dataclass(slots=True)
class AppState:
    settings: Settings
    runtime: DatabaseRuntime
    database: Database
    registry: CollectorRegistry
    api_token: str
    connections: ConnectionManager
    cache: CacheManager
    events: SecurityEvents
    sessions: SessionManager
    api_keys: ApiKeys
    access: AccessControl
    passkeys: PasskeyManager
    security: SecurityManager

    @property
    def audit(self) -> AuditLog:
        return self.security.audit_log

    @property
    def threats(self) -> ThreatAnalyzer:
        return self.security.threats

"""What the app's lifespan creates and the routes use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry

from tenantry.access.manager import AccessControl
from tenantry.ai.auto import AutoTrainer
from tenantry.ai.jobs import TrainingJobs
from tenantry.ai.manager import AIManager
from tenantry.alerts.dispatch import AlertDispatcher
from tenantry.alerts.fixtures import SlackFixtureManager
from tenantry.alerts.groups import AlertGroups
from tenantry.alerts.manager import AlertManager
from tenantry.alerts.notify import AlertNotifier
from tenantry.alerts.silences import SilenceManager
from tenantry.api.auth import TenantGate
from tenantry.audit.manager import AuditLog
from tenantry.cache.manager import CacheManager
from tenantry.config import Settings
from tenantry.connections.manager import ConnectionManager
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.lifecycle.manager import LifecycleManager
from tenantry.lifecycle.retention import RetentionJob
from tenantry.metadata.manager import MetadataManager
from tenantry.metadata.registry import SchemaRegistry
from tenantry.monitoring.manager import MonitoringManager
from tenantry.passkeys.manager import PasskeyManager
from tenantry.performance.autoscaler import AutoScaler
from tenantry.performance.manager import PerformanceManager
from tenantry.security.manager import SecurityManager
from tenantry.sessions.api_keys import ApiKeys
from tenantry.sessions.manager import SessionManager
from tenantry.tenants.manager import TenantRegistry
from tenantry.threats.events import SecurityEvents
from tenantry.threats.manager import ThreatAnalyzer
from tenantry.threats.watch import ThreatWatch
from tenantry.workflows import WorkflowManager, WorkflowWorker

__all__ = ["AppState", "StateDep"]


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
    tenants: TenantRegistry
    schemas: SchemaRegistry
    gate: TenantGate
    threat_watch: ThreatWatch
    metadata: MetadataManager
    monitoring: MonitoringManager
    alerts: AlertManager
    notifier: AlertNotifier
    #: Delivers every tenant's (and the platform's) alert outbox, in rounds in the background.
    dispatcher: AlertDispatcher
    groups: AlertGroups
    fixtures: SlackFixtureManager
    silences: SilenceManager
    ai: AIManager
    ai_jobs: TrainingJobs
    auto_training: AutoTrainer
    performance: PerformanceManager
    #: Scales the service's Deployment (AUTO_SCALING_ENABLED); None while off.
    autoscaler: AutoScaler | None
    workflows: WorkflowManager
    workflow_worker: WorkflowWorker | None
    lifecycle: LifecycleManager
    #: Deletes every tenant's (and the platform's) data past its tier's days, hourly rounds.
    retention: RetentionJob

    @property
    def audit(self) -> AuditLog:
        return self.security.audit_log

    @property
    def threats(self) -> ThreatAnalyzer:
        return self.security.threats


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.tenantry
    return state


StateDep = Annotated[AppState, Depends(_state)]

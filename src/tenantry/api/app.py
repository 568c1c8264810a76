"""The FastAPI application factory. Every resource is made in the lifespan, none at import."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tenantry.access.manager import AccessControl
from tenantry.access.router import router as access_router
from tenantry.ai.auto import AutoTrainer
from tenantry.ai.jobs import TrainingJobs
from tenantry.ai.manager import AIManager
from tenantry.ai.router import router as ai_router
from tenantry.alerts.delivery import SlackSender
from tenantry.alerts.dispatch import AlertDispatcher
from tenantry.alerts.fixtures import SlackFixtureManager
from tenantry.alerts.fixtures_router import router as fixtures_router
from tenantry.alerts.groups import AlertGroups
from tenantry.alerts.manager import AlertManager, Transition
from tenantry.alerts.memory import StoredTranslationMemory
from tenantry.alerts.notify import AlertNotifier
from tenantry.alerts.platform_router import router as platform_alerts_router
from tenantry.alerts.router import router as alerts_router
from tenantry.alerts.silences import SilenceManager
from tenantry.alerts.silences_router import router as silences_router
from tenantry.api.auth import TenantGate
from tenantry.api.errors import install_error_handlers
from tenantry.api.health import router as health_router
from tenantry.api.middleware import BodySizeLimit, HttpMetrics, RequestContextMiddleware
from tenantry.api.multiprocess import mark_dead
from tenantry.api.openapi import document
from tenantry.api.sampling import ServiceSampler
from tenantry.api.state import AppState
from tenantry.api.tracing import AppTracing, TracingMiddleware
from tenantry.api.workers import start_workflows
from tenantry.audit.manager import AuditLog
from tenantry.audit.notes import CheckpointSigner
from tenantry.audit.router import router as audit_router
from tenantry.audit.trail import KeyringAuditCipher, use_trail
from tenantry.cache.manager import CacheManager
from tenantry.cache.router import router as cache_router
from tenantry.cache.stats import CacheCollector
from tenantry.config import Settings, load_settings
from tenantry.connections.manager import ConnectionManager
from tenantry.connections.router import router as connections_router
from tenantry.context import PLATFORM_TENANT
from tenantry.dashboard.router import router as dashboard_router
from tenantry.db.changes import ChangeLog
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.keys.manager import Keyring
from tenantry.keys.provider import provider_from_environment
from tenantry.lifecycle.manager import LifecycleManager
from tenantry.lifecycle.policies import TierPolicy, policies
from tenantry.lifecycle.quotas import RequestLimiter
from tenantry.lifecycle.retention import RetentionJob
from tenantry.lifecycle.router import router as lifecycle_router
from tenantry.logging import get_logger
from tenantry.metadata.indexes import SearchIndexes
from tenantry.metadata.manager import MetadataManager
from tenantry.metadata.registry import SchemaRegistry
from tenantry.metadata.router import router as metadata_router
from tenantry.metadata.schema_router import router as schemas_router
from tenantry.monitoring.exposition import TenantExposition
from tenantry.monitoring.manager import MonitoringManager
from tenantry.monitoring.router import router as monitoring_router
from tenantry.passkeys.manager import PasskeyManager
from tenantry.passkeys.router import router as passkeys_router
from tenantry.performance.autoscaler import AutoScaler
from tenantry.performance.exposition import ScalingMetrics
from tenantry.performance.manager import PerformanceManager
from tenantry.performance.router import router as performance_router
from tenantry.security.manager import ComplianceManager, SecurityManager
from tenantry.sessions.api_keys import ApiKeys
from tenantry.sessions.learner import BehaviourLearner
from tenantry.sessions.manager import SessionManager
from tenantry.sessions.router import router as sessions_router
from tenantry.sessions.stored import register as register_behaviour_model
from tenantry.tenants.manager import TenantRegistry
from tenantry.tenants.router import router as tenants_router
from tenantry.tenants.status import ActiveTenants
from tenantry.threats.detector import WindowDetector
from tenantry.threats.events import SecurityEvents, on_events
from tenantry.threats.manager import Threat, ThreatAnalyzer
from tenantry.threats.router import router as threats_router
from tenantry.threats.watch import ThreatWatch
from tenantry.workflows import WorkflowManager
from tenantry.workflows.router import router as workflows_router

__all__ = ["create_app", "resolve_api_token"]

_log = get_logger("tenantry.api")
#: Seconds between two rounds of the threat watch (tenants with new security events).
THREAT_WATCH_INTERVAL = 30.0
#: Seconds between two rounds of the behaviour learner (tenants with sessions to learn from).
BEHAVIOUR_LEARN_INTERVAL = 60.0


def resolve_api_token(settings: Settings) -> str:
    """``TENANTRY_API_TOKEN``, or one made on first start and kept in the data directory."""
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    path = Path(settings.data_dir) / "api-token"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = "tnt_svc_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


class _PoolCollector(Collector):
    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterable[GaugeMetricFamily]:
        stats = self.database.pool.stats()
        gauge = GaugeMetricFamily(
            "tenantry_db_pool_connections", "Pool connections", labels=["state"]
        )
        gauge.add_metric(["checked_out"], float(stats["checked_out"]))
        gauge.add_metric(["idle"], float(stats["idle"]))
        yield gauge


async def _watch_threats(
    stack: AsyncExitStack, database: Database, security: SecurityManager
) -> ThreatWatch:
    """Continuous threat detection: tenants that recorded events are analysed on a schedule,
    and HIGH threats audited, whether or not anyone asks for a report."""
    watch = ThreatWatch(security.threats, interval=THREAT_WATCH_INTERVAL)
    on_events(database, watch.notice)
    await watch.start()
    stack.push_async_callback(watch.close)
    return watch


async def _learn_behaviour(stack: AsyncExitStack, sessions: SessionManager) -> BehaviourLearner:
    """Behaviour models learned in the background from each session once, stored per tenant,
    read by every node (docs/sessions.md)."""
    learner = sessions.learner
    learner.interval = BEHAVIOUR_LEARN_INTERVAL
    await learner.start()
    stack.push_async_callback(learner.close)
    return learner


async def _metadata(
    stack: AsyncExitStack,
    runtime: DatabaseRuntime,
    database: Database,
    trail: ChangeLog,
    keyring: Keyring,
) -> MetadataManager:
    """The metadata manager (with its schema registry, ``.schemas.registry``), embedding new
    and changed records in the background and building large tenants' search indexes with the
    admin URL the service migrates with."""
    schemas = SchemaRegistry(database, audit=trail)
    metadata = MetadataManager(
        database,
        audit=trail,
        keyring=keyring,
        registry=schemas,
        indexes=SearchIndexes(database, runtime=runtime),
    )
    await metadata.initialize()
    stack.push_async_callback(metadata.close)
    return metadata


async def _monitoring(
    stack: AsyncExitStack,
    database: Database,
    trail: ChangeLog,
    security: SecurityManager,
    keyring: Keyring,
    *,
    settings: Settings,
    cache: CacheManager,
    connections: ConnectionManager,
    sessions: SessionManager,
    exposition: TenantExposition,
) -> tuple[MonitoringManager, AlertManager, AlertNotifier, SlackFixtureManager, AlertDispatcher]:
    """Metrics recorded in this process, flushed to the tenants' series every 10 s (on stop,
    what is left is written, before the database is disposed: the stack unwinds in reverse),
    the alert rules evaluated over them every 30 s, and their messages delivered from the
    outbox (by the dispatcher returned). What the collector writes is added to ``/metrics``
    too (``exposition``)."""
    monitoring = MonitoringManager(database, exposition=exposition)
    await monitoring.start_collection()
    stack.push_async_callback(monitoring.close)
    sampler = ServiceSampler(  # the managers' own metrics
        monitoring, cache, connections, sessions=sessions, audit=security.trail.outbox
    )
    await sampler.start()
    stack.push_async_callback(sampler.close)
    # the tenants' Slack alert templates (a rule's ``fixture`` annotation names one); each
    # request's manager is for_tenant()'s; missing translations from each tenant's memory
    fixtures = SlackFixtureManager(
        None,
        database,
        audit=trail,
        keyring=keyring,
        compliance=ComplianceManager(security),
        translator=StoredTranslationMemory(database, audit=trail),
    )
    notifier = AlertNotifier(
        database,
        audit=trail,
        keyring=keyring,
        webhook_prefixes=settings.slack_webhook_prefixes.split(","),
        fixtures=fixtures,
    )
    sender = SlackSender()
    stack.push_async_callback(sender.aclose)
    dispatcher = AlertDispatcher(notifier, sender, database)
    notifier.on_message = dispatcher.notice  # a workflow's message goes out in the next round

    async def queue(transitions: list[Transition]) -> None:
        """A background evaluation's transitions: their messages queued, then delivered."""
        if await notifier.enqueue(transitions):
            for tenant_id in {t.tenant_id for t in transitions} | {PLATFORM_TENANT}:
                dispatcher.notice(tenant_id)  # the platform: the copies of its route

    async def threat(found: Threat) -> None:
        """A threat of HIGH or above: its message queued, then delivered (the tenant's, and
        the platform's copy if its routing reached a receiver)."""
        if await notifier.threat(found):
            dispatcher.notice(found.tenant_id)
        dispatcher.notice(PLATFORM_TENANT)

    security.threats.on_threat.append(threat)
    alerts = AlertManager(
        database,
        audit=trail,
        monitoring=monitoring,
        threats=security.threats,
        on_transitions=queue,
    )
    await alerts.start()
    stack.push_async_callback(alerts.close)
    await dispatcher.start()
    stack.push_async_callback(dispatcher.close)
    return monitoring, alerts, notifier, fixtures, dispatcher


async def _performance(
    stack: AsyncExitStack,
    database: Database,
    trail: ChangeLog,
    settings: Settings,
    *,
    monitoring: MonitoringManager,
    cache: CacheManager,
    connections: ConnectionManager,
    ai: AIManager,
    audit_log: AuditLog,
    registry: CollectorRegistry,
) -> tuple[PerformanceManager, AutoScaler | None]:
    """The process's performance signals sampled every ``PERFORMANCE_MONITORING_INTERVAL``
    seconds into the monitoring series, its bottlenecks raised as the platform's ``bottleneck``
    series; an optimization round judges its change over two intervals (5-60 s). Its knobs:
    the cache's, the connections', the AI manager's micro-batcher and the audit log's group
    commit. And, with ``AUTO_SCALING_ENABLED``, the autoscaler on its advice (or, with
    ``TENANTRY_SCALING_ADVICE_METRIC``, the advice published for an HPA)."""
    performance = PerformanceManager(
        database,
        monitoring=monitoring,
        cache=cache,
        connections=connections,
        audit=trail,
        ai=ai,
        audit_log=audit_log,
        settings=settings,
        measure_seconds=min(60.0, max(5.0, 2 * settings.performance_monitoring_interval)),
    )
    await performance.start_monitoring()
    stack.push_async_callback(performance.close)
    return performance, _autoscaler(stack, settings, performance, registry)


def _autoscaler(
    stack: AsyncExitStack,
    settings: Settings,
    performance: PerformanceManager,
    registry: CollectorRegistry,
) -> AutoScaler | None:
    """``AUTO_SCALING_ENABLED`` with ``ENABLE_PREDICTIVE_SCALING``: the service's Deployment
    scaled on its own advice every ``TENANTRY_AUTOSCALING_INTERVAL`` seconds (docs/performance.md);
    ``TENANTRY_SCALING_ADVICE_METRIC`` instead: the same rounds, their advice only published as
    ``tenantry_scaling_recommended_replicas`` for an HPA; else nothing runs."""
    if not (settings.auto_scaling_enabled or settings.scaling_advice_metric):
        return None
    if not settings.enable_predictive_scaling:
        _log.warning("autoscaling needs ENABLE_PREDICTIVE_SCALING: no scaling advice")
        return None
    scaler = AutoScaler.from_settings(
        performance,
        apply=settings.auto_scaling_enabled,
        metrics=ScalingMetrics(registry),
    )
    scaler.start()
    stack.push_async_callback(scaler.close)
    _log.info(
        "autoscaling",
        namespace=scaler.scale.namespace,
        deployment=scaler.scale.deployment,
        interval=scaler.interval,
        applies=scaler.apply,
    )
    return scaler


def _register_collectors(
    stack: AsyncExitStack,
    registry: CollectorRegistry,
    database: Database,
    cache: CacheManager,
    settings: Settings,
) -> None:
    """The pools' and the cache's Prometheus collectors, unregistered when the app stops (and,
    with several workers, this one marked dead: ``api/multiprocess.py``)."""
    stack.callback(mark_dead)
    for collector in (
        _PoolCollector(database),
        CacheCollector(cache.tenants, cache.stats, max_tenants=settings.metrics_max_tenants),
    ):
        registry.register(collector)
        stack.callback(registry.unregister, collector)


def _metrics(
    registry: CollectorRegistry, settings: Settings
) -> tuple[HttpMetrics, TenantExposition]:
    """The app's own Prometheus metrics: the requests', and the tenants' series (which the
    metrics collector adds to at each flush), bounded by the settings."""
    exposition = TenantExposition(
        registry,
        max_tenants=settings.metrics_max_tenants,
        max_series=settings.metrics_max_series_per_tenant,
    )
    return HttpMetrics(registry), exposition


def _include_routers(app: FastAPI) -> None:
    """Every domain's routes."""
    for router in (
        health_router,
        tenants_router,
        cache_router,
        connections_router,
        sessions_router,
        access_router,
        passkeys_router,
        audit_router,
        threats_router,
        metadata_router,
        schemas_router,
        monitoring_router,
        alerts_router,
        silences_router,
        platform_alerts_router,
        fixtures_router,
        ai_router,
        performance_router,
        workflows_router,
        lifecycle_router,
        dashboard_router,
    ):
        app.include_router(router)


async def _lifecycle(  # noqa: PLR0917 - the lifecycle's parts, once
    stack: AsyncExitStack,
    database: Database,
    trail: ChangeLog,
    settings: Settings,
    monitoring: MonitoringManager,
    workflows: WorkflowManager,
    tenants: TenantRegistry,
    security: SecurityManager,
    cache: CacheManager,
    sessions: SessionManager,
    metadata: MetadataManager,
    connections: ConnectionManager,
) -> tuple[LifecycleManager, RequestLimiter, RetentionJob]:
    """The lifecycle manager, and what the tier policies govern: each tenant's requests a second
    (the limiter; shared by every process through the connections' Redis when there is one), its
    live sessions and metric series (by the limiter's cached tiers), its
    in-process cache budget and its stored metadata's bytes, its old data deleted by its tier's
    retention (the job returned: an hourly round, a daily sweep; the metric series' by the
    monitoring manager's downsampler, with the same days)."""
    tiers = policies(settings.tier_policies)
    monitoring.downsampler.retention = {
        tier: timedelta(days=p.retention_days["metrics"]) for tier, p in tiers.items()
    }
    # its rounds also recount each active tenant's stored-bytes total in turn (bounded)
    job = RetentionJob(database, tiers, audit=trail, recount=metadata.recount_storage)
    await job.start()
    stack.push_async_callback(job.close)
    lifecycle = LifecycleManager(
        database,
        workflows=workflows,
        tenants=tenants,
        audit=trail,
        keyring=security.keyring,
        security=security,
        cache=cache,
    )
    lifecycle.retention = job

    # Each tenant's in-process cache is capped at its tier's cache_bytes, set when the limiter
    # reads its tier (its first request, then every TIER_TTL): never asked on the cache's path.
    def cache_budget(tenant_id: str, policy: TierPolicy) -> None:
        cache.l1.set_budget(tenant_id, policy.cache_bytes)

    redis = connections.redis
    limiter = RequestLimiter(
        tenants,
        tiers,
        on_tier=cache_budget,
        redis=redis,
        breaker=connections.breaker("redis") if redis is not None else None,
    )
    # its background reads of tiers (for the series caps) cancelled before the database closes
    stack.push_async_callback(limiter.close)
    monitoring.aggregator.series_limit = limiter.metric_series
    sessions.tenant_limit = limiter.sessions

    # Each tenant's stored metadata is capped at its tier's storage_bytes (its tier cached by
    # the limiter), counted in each write's transaction (metadata/storage.py).
    async def storage_limit(tenant_id: str) -> int:
        return (await limiter.policy(tenant_id)).storage_bytes

    metadata.storage_limit = storage_limit
    return lifecycle, limiter, job


def _gate(  # noqa: PLR0917 - the gate's parts, once
    settings: Settings,
    database: Database,
    trail: ChangeLog,
    cache: CacheManager,
    active: ActiveTenants,
    sessions: SessionManager,
    access: AccessControl,
    limiter: RequestLimiter,
) -> tuple[str, ApiKeys, TenantGate]:
    """The service token, the API keys, and the gate that checks every credential with them
    (and each tenant's request rate)."""
    api_token = resolve_api_token(settings)
    api_keys = ApiKeys(database, cache=cache, audit=trail, active=active)
    gate = TenantGate(
        api_token=api_token,
        database=database,
        active=active,
        sessions=sessions,
        api_keys=api_keys,
        access=access,
        limiter=limiter,
    )
    return api_token, api_keys, gate


def create_app(settings: Settings | None = None) -> FastAPI:
    """The tenantry service. ``settings`` defaults to the environment's."""
    settings = settings or load_settings()
    registry = CollectorRegistry()
    tracing = AppTracing(settings)
    http_metrics, exposition = _metrics(registry, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            _trace(stack, tracing)
            runtime, database, revision = await _database(stack, settings)
            connections = ConnectionManager(settings, primary=database)
            await connections.start()
            stack.push_async_callback(connections.close)  # which ends the routing below
            # Every transaction on the database, whoever opens it, takes the manager's path:
            # the tenant's bulkhead lane, the primary's breaker and pool gate; reads that may be
            # stale go to a replica. Nested transactions join the open one and take no slot.
            database.route_through(connections)
            cache = await _cache(stack, settings, connections)
            _register_collectors(stack, registry, database, cache, settings)
            events = SecurityEvents(database)
            keyring = Keyring(database, provider_from_environment(settings), settings=settings)
            await keyring.start()  # follows other processes' key destructions and rotations
            stack.push_async_callback(keyring.close)
            security = SecurityManager(
                database,
                keyring=keyring,
                audit_log=AuditLog(
                    database,
                    signer=CheckpointSigner.from_data_dir(
                        settings.data_dir,
                        quantum=settings.quantum_crypto_enabled
                        or settings.security_level == "quantum",
                    ),
                    cipher=KeyringAuditCipher(keyring),
                ),
                threats=ThreatAnalyzer(database),
                events=events,
            )
            trail = security.trail  # every manager audits its changes here (invariant 7)
            watch = await _watch_threats(stack, database, security)
            use_trail(database, trail)  # its queue is integrated a last time on dispose
            access = AccessControl(database, audit=trail)
            passkeys = PasskeyManager(
                database,
                rp_id=settings.webauthn_rp_id,
                origin=settings.webauthn_origin,
                audit=trail,
            )
            # Every credential of a tenant that is not active is refused; a status change through
            # the app's registry drops the cached answer on every node.
            active = ActiveTenants(TenantRegistry(database), cache)
            sessions = SessionManager(
                database,
                cache=cache,
                events=events,
                access=access,
                passkeys=passkeys,
                audit=trail,
                active=active,
            )
            learner = await _learn_behaviour(stack, sessions)
            metadata = await _metadata(stack, runtime, database, trail, keyring)
            monitoring, alerts, notifier, fixtures, dispatcher = await _monitoring(
                stack,
                database,
                trail,
                security,
                keyring,
                settings=settings,
                cache=cache,
                connections=connections,
                sessions=sessions,
                exposition=exposition,
            )
            ai_jobs = _ai(stack, database, settings, trail)
            performance, autoscaler = await _performance(
                stack,
                database,
                trail,
                settings,
                monitoring=monitoring,
                cache=cache,
                connections=connections,
                ai=ai_jobs.ai,
                audit_log=security.audit_log,
                registry=registry,
            )

            async def status_changed(tenant_id: str) -> None:
                await active.forget(tenant_id)
                limiter.forget(tenant_id)  # its tier, read again
                learner.notice(tenant_id)  # a deleted tenant's samples and model are dropped

            auto_training = await _auto_train(stack, ai_jobs, monitoring, database)
            # each tenant's window detector, when its registry has one (threats/detector.py)
            security.threats.detector = WindowDetector(ai_jobs.ai)
            workflows, workflow_worker = await start_workflows(
                stack, database, trail, settings, {"metadata": metadata, "notifier": notifier}
            )
            tenants = TenantRegistry(database, audit=trail, on_status_change=status_changed)
            lifecycle, limiter, retention = await _lifecycle(
                stack, database, trail, settings, monitoring, workflows, tenants, security, cache,
                sessions, metadata, connections,
            )  # fmt: skip
            api_token, api_keys, gate = _gate(
                settings, database, trail, cache, active, sessions, access, limiter
            )
            app.state.tenantry = AppState(
                settings=settings,
                runtime=runtime,
                database=database,
                registry=registry,
                api_token=api_token,
                connections=connections,
                cache=cache,
                events=events,
                sessions=sessions,
                api_keys=api_keys,
                access=access,
                passkeys=passkeys,
                security=security,
                tenants=tenants,
                schemas=metadata.schemas.registry,
                gate=gate,
                threat_watch=watch,
                metadata=metadata,
                monitoring=monitoring,
                alerts=alerts,
                notifier=notifier,
                dispatcher=dispatcher,
                fixtures=fixtures,
                silences=SilenceManager(database, audit=trail),
                groups=AlertGroups(database),
                ai=ai_jobs.ai,
                ai_jobs=ai_jobs,
                auto_training=auto_training,
                performance=performance,
                autoscaler=autoscaler,
                workflows=workflows,
                workflow_worker=workflow_worker,
                lifecycle=lifecycle,
                retention=retention,
            )
            _log.info(
                "started",
                mode="embedded" if settings.embedded else "server",
                revision=revision,
                redis=connections.redis is not None,
            )
            yield

    app = FastAPI(
        title="tenantry",
        version="0.1.0",
        summary="The tenant boundary of a multi-tenant service, and the managers on it.",
        lifespan=lifespan,
        redirect_slashes=False,
        swagger_ui_parameters={"persistAuthorization": True},  # /docs keeps what Authorize got
        # FastAPI's own spans, metrics and logs (on when a process-wide provider is set) are off:
        # the service's traces are its own (api/tracing.py), and its metrics are Prometheus'.
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
    )
    install_error_handlers(app)
    _include_routers(app)
    document(app)  # every route's errors and credentials in /openapi.json
    _add_middleware(app, settings, http_metrics, tracing)
    return app


async def _database(
    stack: AsyncExitStack, settings: Settings
) -> tuple[DatabaseRuntime, Database, str | None]:
    """The database started (embedded) or found (server), migrated, and the app's pool on it;
    stopped and closed when the app stops. Its revision after migrating."""
    runtime = DatabaseRuntime(settings)
    await runtime.start()
    stack.push_async_callback(runtime.stop)
    revision = await runtime.migrate()
    database = runtime.open_database()
    stack.push_async_callback(database.dispose)
    return runtime, database, revision


async def _cache(
    stack: AsyncExitStack, settings: Settings, connections: ConnectionManager
) -> CacheManager:
    """The cache: its L1 in process, its L2 on the connections' Redis (when there is one)."""
    cache = CacheManager(
        l1_bytes=settings.cache_l1_bytes,
        redis=connections.redis,
        breaker=connections.breaker("redis") if connections.redis else None,
        default_ttl=settings.cache_ttl,
        stale_ttl=settings.cache_stale_ttl,
        prefetch=settings.cache_optimization_enabled,
    )
    await cache.start()
    stack.push_async_callback(cache.close)
    return cache


def _ai(
    stack: AsyncExitStack, database: Database, settings: Settings, trail: ChangeLog
) -> TrainingJobs:
    """The AI manager (ML_MODELS_ENABLED gates it) and its training jobs, cancelled at the end."""
    register_behaviour_model()  # session_behaviour: the learner's models, askable through /ai
    jobs = TrainingJobs(AIManager(database, settings=settings, audit=trail))
    stack.push_async_callback(jobs.close)
    return jobs


async def _auto_train(
    stack: AsyncExitStack, jobs: TrainingJobs, monitoring: MonitoringManager, database: Database
) -> AutoTrainer:
    """Each active tenant's load_forecasting model retrained from its request series, one
    tenant at a time, when ML_MODELS_ENABLED and AUTO_TRAINING_ENABLED are on (else it never
    starts); stopped before the jobs and the monitoring it uses (docs/ai.md)."""
    trainer = AutoTrainer(jobs, monitoring, database)
    await trainer.start()
    stack.push_async_callback(trainer.close)
    return trainer


def _trace(stack: AsyncExitStack, tracing: AppTracing) -> None:
    """First in, last out: the background work started after it is traced, and the spans of its
    closing are exported at the very end (``TENANTRY_TRACING``; off: nothing is made)."""
    tracing.start()
    stack.push_async_callback(tracing.close)


def _add_middleware(
    app: FastAPI, settings: Settings, http_metrics: HttpMetrics, tracing: AppTracing
) -> None:
    """From the innermost out: the body cap, the request's span, its id, log and metrics."""
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.tracing != "off":  # off: not even a check per request
        app.add_middleware(TracingMiddleware, tracing=tracing)
    app.add_middleware(RequestContextMiddleware, metrics=http_metrics)

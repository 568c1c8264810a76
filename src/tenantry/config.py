"""Settings from the environment.

The documents' variable names (``MANAGERS_CONFIG_LEVEL``, ``POSTGRES_POOL_SIZE``, ...) are read
as they are; tenantry's own ones start with ``TENANTRY_``. README.md's configuration table says
which of them the code uses today. An invalid value raises :class:`~tenantry.errors.ConfigError`
with one line that names the variable and what it accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from tenantry.errors import ConfigError

__all__ = ["Settings", "load_settings"]


#: A PostgreSQL identifier (role or database name) as tenantry creates them.
_PG_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"


class _Constraints(TypedDict, total=False):
    gt: float
    ge: float
    le: float
    min_length: int
    pattern: str


def _env(
    name: str,
    default: Any = None,
    *,
    default_factory: Callable[[], Any] | None = None,
    **constraints: Unpack[_Constraints],
) -> Any:
    """A field read from ``name`` that also takes the attribute name (``Settings(port=1)``)."""
    aliases = AliasChoices(name, name.removeprefix("TENANTRY_").lower())
    if default_factory is not None:
        return Field(default_factory=default_factory, validation_alias=aliases, **constraints)
    return Field(default=default, validation_alias=aliases, **constraints)


class Settings(BaseSettings):
    """Every setting of tenantry. Make one with ``Settings()`` (reads the environment)."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", frozen=True, populate_by_name=True
    )

    # -- the documents' variables (README.md says which ones act today) ------------------------
    managers_config_level: Literal["development", "staging", "production"] = "development"
    enable_ai_optimization: bool = False
    enable_predictive_scaling: bool = False
    enable_real_time_monitoring: bool = False
    performance_monitoring_interval: float = Field(default=10.0, gt=0, le=3600)
    cache_optimization_enabled: bool = False
    auto_scaling_enabled: bool = False
    security_level: Literal["high", "critical", "quantum"] = "high"
    zero_trust_enabled: bool = True
    biometric_auth_enabled: bool = False
    quantum_crypto_enabled: bool = False
    ml_models_enabled: bool = False
    anomaly_detection_threshold: float = Field(default=0.95, ge=0, le=1)
    prediction_accuracy_target: float = Field(default=0.85, ge=0, le=1)
    auto_training_enabled: bool = False
    postgres_pool_size: int = Field(default=10, ge=1, le=1000)
    redis_cluster_enabled: bool = False
    mongodb_replica_set: bool = False
    elasticsearch_shards: int = Field(default=1, ge=1, le=1024)

    # -- tenantry's own ------------------------------------------------------------------------
    database_url: str | None = _env("TENANTRY_DATABASE_URL")
    app_database_url: str | None = _env("TENANTRY_APP_DATABASE_URL")
    app_db_password: SecretStr | None = _env("TENANTRY_APP_DB_PASSWORD")
    redis_url: str | None = _env("TENANTRY_REDIS_URL")
    data_dir: Path = _env("TENANTRY_DATA_DIR", Path(".tenantry"))
    host: str = _env("TENANTRY_HOST", "127.0.0.1")
    port: int = _env("TENANTRY_PORT", 8000, ge=1, le=65535)
    api_token: SecretStr | None = _env("TENANTRY_API_TOKEN")
    log_level: Literal["debug", "info", "warning", "error"] = _env("TENANTRY_LOG_LEVEL", "info")
    owner_role: str = _env("TENANTRY_OWNER_ROLE", "tenantry_owner", pattern=_PG_IDENTIFIER)
    app_role: str = _env("TENANTRY_APP_ROLE", "tenantry_app", pattern=_PG_IDENTIFIER)
    cache_l1_bytes: int = _env(
        "TENANTRY_CACHE_L1_BYTES", 64 * 1024 * 1024, ge=64 * 1024, le=64 * 1024**3
    )
    cache_ttl: float = _env("TENANTRY_CACHE_TTL", 300.0, gt=0, le=30 * 86400)
    cache_stale_ttl: float = _env("TENANTRY_CACHE_STALE_TTL", 0.0, ge=0, le=30 * 86400)
    read_replica_urls: list[str] = _env("TENANTRY_READ_REPLICA_URLS", default_factory=list)
    read_balancer: Literal["power_of_two", "least_connections", "round_robin"] = _env(
        "TENANTRY_READ_BALANCER", "power_of_two"
    )
    http_endpoints: dict[str, list[str]] = _env("TENANTRY_HTTP_ENDPOINTS", default_factory=dict)
    redis_pool_size: int = _env("TENANTRY_REDIS_POOL_SIZE", 10, ge=1, le=1000)
    tenant_pool_share: float = _env("TENANTRY_TENANT_POOL_SHARE", 0.5, gt=0, le=1)
    bulkhead_timeout: float = _env("TENANTRY_BULKHEAD_TIMEOUT", 1.0, gt=0, le=60)
    breaker_failure_rate: float = _env("TENANTRY_BREAKER_FAILURE_RATE", 0.5, gt=0, le=1)
    breaker_open_seconds: float = _env("TENANTRY_BREAKER_OPEN_SECONDS", 5.0, gt=0, le=3600)
    breaker_minimum_calls: int = _env("TENANTRY_BREAKER_MINIMUM_CALLS", 10, ge=1, le=1000)
    root_key_file: Path | None = _env("TENANTRY_ROOT_KEY_FILE")
    webauthn_rp_id: str = _env("TENANTRY_WEBAUTHN_RP_ID", "localhost", min_length=1)
    webauthn_origin: str = _env(
        "TENANTRY_WEBAUTHN_ORIGIN", "http://localhost:8000", pattern=r"^https?://"
    )
    embedded_database: str = _env("TENANTRY_EMBEDDED_DATABASE", "tenantry", pattern=_PG_IDENTIFIER)
    max_body_bytes: int = _env("TENANTRY_MAX_BODY_BYTES", 1024 * 1024, ge=1024, le=1024**3)
    metrics_max_tenants: int = _env("TENANTRY_METRICS_MAX_TENANTS", 100, ge=0, le=100_000)
    #: Metric names of one tenant that ``/metrics`` names (``tenantry_tenant_metric_*``); the
    #: values of the others are counted in ``tenantry_tenant_series_overflow_total``.
    metrics_max_series_per_tenant: int = _env(
        "TENANTRY_METRICS_MAX_SERIES_PER_TENANT", 100, ge=0, le=10_000
    )
    #: ``AUTO_SCALING_ENABLED`` (with ``ENABLE_PREDICTIVE_SCALING``): the service applies its
    #: own scaling advice to this Deployment through the Kubernetes API's scale subresource
    #: (``performance/autoscaler.py``). Unset: the in-cluster API, service account and namespace.
    autoscaling_api_url: str | None = _env(
        "TENANTRY_AUTOSCALING_API_URL", None, pattern=r"^https?://"
    )
    autoscaling_token_file: Path = _env(
        "TENANTRY_AUTOSCALING_TOKEN_FILE",
        Path("/var/run/secrets/kubernetes.io/serviceaccount/token"),
    )
    autoscaling_ca_file: Path = _env(
        "TENANTRY_AUTOSCALING_CA_FILE", Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
    )
    autoscaling_namespace: str | None = _env(
        "TENANTRY_AUTOSCALING_NAMESPACE", None, pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
    )
    autoscaling_deployment: str = _env(
        "TENANTRY_AUTOSCALING_DEPLOYMENT",
        "tenantry",
        pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
    )
    autoscaling_min_replicas: int = _env("TENANTRY_AUTOSCALING_MIN_REPLICAS", 1, ge=1, le=100_000)
    autoscaling_max_replicas: int = _env("TENANTRY_AUTOSCALING_MAX_REPLICAS", 10, ge=1, le=100_000)
    #: The per-pod target: requests per second one pod should serve.
    autoscaling_target_per_pod: float = _env("TENANTRY_AUTOSCALING_TARGET_PER_POD", 50.0, gt=0)
    #: Seconds between rounds; at most one change per stabilization window.
    autoscaling_interval: float = _env("TENANTRY_AUTOSCALING_INTERVAL", 60.0, gt=0, le=3600)
    autoscaling_stabilization_seconds: int = _env(
        "TENANTRY_AUTOSCALING_STABILIZATION_SECONDS", 300, ge=0, le=3600
    )
    #: How far ahead the forecast's peak is read: the pods' start-up time.
    autoscaling_lead_seconds: float = _env(
        "TENANTRY_AUTOSCALING_LEAD_SECONDS", 180.0, ge=0, le=86400
    )

    #: With ``ENABLE_PREDICTIVE_SCALING`` and without ``AUTO_SCALING_ENABLED``: the autoscaler's
    #: rounds run but only publish their advice, ``tenantry_scaling_recommended_replicas`` in
    #: ``/metrics``, for a HorizontalPodAutoscaler to read (deploy/kubernetes/hpa.yaml).
    scaling_advice_metric: bool = _env("TENANTRY_SCALING_ADVICE_METRIC", False)

    #: Worker processes of ``tenantry serve`` (several: prometheus-client's multiprocess mode).
    workers: int = _env("TENANTRY_WORKERS", 1, ge=1, le=64)
    #: Where a tenant's alert webhooks may point: the service POSTs to them, so any other URL
    #: would let a tenant reach the service's network (SSRF). Comma-separated URL prefixes.
    slack_webhook_prefixes: str = _env(
        "TENANTRY_SLACK_WEBHOOK_PREFIXES", "https://hooks.slack.com/", min_length=1
    )

    #: With ``AUTO_TRAINING_ENABLED`` (and ``ML_MODELS_ENABLED``): how often each active
    #: tenant's models are retrained from the service's own data (seconds, a day by default),
    #: and how many tenants one round of the trainer trains at most (docs/ai.md).
    auto_training_interval: float = _env(
        "TENANTRY_AUTO_TRAINING_INTERVAL", 86400.0, ge=60, le=30 * 86400
    )
    auto_training_tenants: int = _env("TENANTRY_AUTO_TRAINING_TENANTS", 10, ge=1, le=1000)
    #: A TOML file of tier policies over the shipped ones (docs/lifecycle.md).
    tier_policies: Path | None = _env("TENANTRY_TIER_POLICIES")
    #: Whether the service runs a workflow worker in its process (``tenantry worker`` runs
    #: more, anywhere that reaches the database), and how many sagas a worker runs at once.
    workflow_worker: bool = _env("TENANTRY_WORKFLOW_WORKER", True)
    workflow_concurrency: int = _env("TENANTRY_WORKFLOW_CONCURRENCY", 32, ge=1, le=1024)
    #: Seconds a worker's claim on a saga lasts without a heartbeat (renewed every third of
    #: it): how soon another worker resumes the sagas of a worker that died.
    workflow_lease: float = _env("TENANTRY_WORKFLOW_LEASE", 30.0, ge=1, le=3600)
    #: Modules a worker imports before it starts: each registers workflow definitions.
    workflow_definitions: list[str] = _env("TENANTRY_WORKFLOW_DEFINITIONS", default_factory=list)

    #: Traces of requests and manager calls: ``off`` (no tracer provider at all), ``otlp``
    #: (OTLP/HTTP to ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``,
    #: read by the exporter) or ``console`` (stdout). See docs/tracing.md.
    tracing: Literal["off", "otlp", "console"] = _env("TENANTRY_TRACING", "off")
    #: The share of requests (and background rounds) traced, drawn by the service.
    tracing_sample_ratio: float = _env("TENANTRY_TRACING_SAMPLE_RATIO", 1.0, ge=0, le=1)

    @field_validator("database_url", "app_database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            url = make_url(value)
        except Exception as exc:
            raise ValueError("a PostgreSQL URL such as postgresql://user@host:5432/db") from exc
        if url.get_backend_name() != "postgresql":
            raise ValueError("a PostgreSQL URL such as postgresql://user@host:5432/db")
        return value

    @field_validator("read_replica_urls")
    @classmethod
    def _replica_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            cls._postgres_url(url)
        return value

    @field_validator("http_endpoints")
    @classmethod
    def _http_endpoints(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for group, urls in value.items():
            if not urls or not all(u.startswith(("http://", "https://")) for u in urls):
                raise ValueError(
                    f'a JSON object of groups to http(s) URL lists, e.g. {{"slack": ["https://..."]}}'
                    f" (group {group!r})"
                )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("a Redis URL such as redis://127.0.0.1:6379/0")
        return value

    @property
    def embedded(self) -> bool:
        """True when tenantry runs its own PostgreSQL (no ``TENANTRY_DATABASE_URL``)."""
        return self.database_url is None

    def server_owner_url(self) -> URL:
        """The URL migrations use in server mode (``TENANTRY_DATABASE_URL``), asyncpg driver."""
        if self.database_url is None:
            raise ConfigError("TENANTRY_DATABASE_URL is not set (embedded mode)")
        return make_url(self.database_url).set(drivername="postgresql+asyncpg")

    def server_app_url(self) -> URL:
        """The URL the application role connects with in server mode."""
        if self.app_database_url is not None:
            return make_url(self.app_database_url).set(drivername="postgresql+asyncpg")
        password = self.app_db_password.get_secret_value() if self.app_db_password else None
        return self.server_owner_url().set(username=self.app_role, password=password)


def _describe(error: dict[str, Any]) -> str:
    field = str(error["loc"][0]) if error.get("loc") else "?"
    info = Settings.model_fields.get(field)
    name = field.upper()
    if info is not None and isinstance(info.validation_alias, AliasChoices):
        first = info.validation_alias.choices[0]
        name = first if isinstance(first, str) else name
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{name}={error.get('input')!r} is invalid: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Read :class:`Settings` from the environment, with ``overrides`` on top.

    Raises :class:`ConfigError` whose message is one line per invalid variable.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(dict(e)) for e in exc.errors())) from None

"""The catalogue of actions: every permission a route or library call can ask for.

An action is ``domain:verb``. A route declares the one it needs (``tenantry.http.require``); the
policy (``tenantry.access.policy``) says which roles may perform it; anything not listed here is
denied, whatever the roles.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = [
    "ACTIONS",
    "AI_READ",
    "AI_TRAIN",
    "ALERTS_READ",
    "ALERTS_WRITE",
    "API_KEYS_MANAGE",
    "CACHE_READ",
    "CONNECTIONS_ADMIN",
    "DASHBOARD_READ",
    "FIXTURES_READ",
    "FIXTURES_WRITE",
    "METADATA_READ",
    "METADATA_WRITE",
    "METRICS_READ",
    "MONITORING_READ",
    "PASSKEYS_AUTHENTICATE",
    "PASSKEYS_REGISTER",
    "PERFORMANCE_READ",
    "PERFORMANCE_WRITE",
    "ROLES_MANAGE",
    "SCHEMAS_READ",
    "SCHEMAS_WRITE",
    "SECURITY_READ",
    "SESSIONS_ANALYTICS",
    "SESSIONS_CREATE",
    "SESSIONS_READ",
    "SESSIONS_REVOKE",
    "SETTINGS_READ",
    "SETTINGS_WRITE",
    "TENANTS_ADMIN",
    "WORKFLOWS_OPERATE",
    "WORKFLOWS_READ",
    "WORKFLOWS_RUN",
    "is_action",
]

TENANTS_ADMIN = "tenants:admin"
SETTINGS_READ = "settings:read"
SETTINGS_WRITE = "settings:write"
CACHE_READ = "cache:read"
CONNECTIONS_ADMIN = "connections:admin"
METRICS_READ = "metrics:read"
SESSIONS_CREATE = "sessions:create"
SESSIONS_READ = "sessions:read"
SESSIONS_REVOKE = "sessions:revoke"
SESSIONS_ANALYTICS = "sessions:analytics"
API_KEYS_MANAGE = "api_keys:manage"
PASSKEYS_REGISTER = "passkeys:register"
PASSKEYS_AUTHENTICATE = "passkeys:authenticate"
SECURITY_READ = "security:read"
ROLES_MANAGE = "roles:manage"
METADATA_READ = "metadata:read"
METADATA_WRITE = "metadata:write"
SCHEMAS_READ = "schemas:read"
SCHEMAS_WRITE = "schemas:write"
MONITORING_READ = "monitoring:read"
ALERTS_READ = "alerts:read"
ALERTS_WRITE = "alerts:write"
FIXTURES_READ = "fixtures:read"
FIXTURES_WRITE = "fixtures:write"
AI_READ = "ai:read"
AI_TRAIN = "ai:train"
PERFORMANCE_READ = "performance:read"
PERFORMANCE_WRITE = "performance:write"
WORKFLOWS_READ = "workflows:read"
WORKFLOWS_RUN = "workflows:run"
WORKFLOWS_OPERATE = "workflows:operate"
DASHBOARD_READ = "dashboard:read"

#: Every action, with what it allows.
ACTIONS: MappingProxyType[str, str] = MappingProxyType(
    {
        TENANTS_ADMIN: "create, list, read and change the status of any tenant (platform only)",
        SETTINGS_READ: "read the tenant's settings",
        SETTINGS_WRITE: "create, change and delete the tenant's settings",
        CACHE_READ: "read the tenant's cache statistics",
        CONNECTIONS_ADMIN: "see every backend's health, breakers and pools (platform only)",
        METRICS_READ: "scrape the Prometheus metrics of every tenant (platform only)",
        SESSIONS_CREATE: "open a session for a user of the tenant",
        SESSIONS_READ: "read sessions of the tenant",
        SESSIONS_REVOKE: "revoke sessions of the tenant",
        SESSIONS_ANALYTICS: "read the tenant's session analytics",
        API_KEYS_MANAGE: "create, list and revoke the tenant's API keys",
        PASSKEYS_REGISTER: "register a passkey for oneself",
        PASSKEYS_AUTHENTICATE: "authenticate (or step up) with a passkey",
        SECURITY_READ: "read the tenant's security events and threat level",
        ROLES_MANAGE: "grant and revoke roles within the tenant",
        METADATA_READ: "read, list and search the tenant's metadata records and their versions",
        METADATA_WRITE: "create, update, roll back and delete the tenant's metadata records",
        SCHEMAS_READ: "read the tenant's registered schemas and check a schema's compatibility",
        SCHEMAS_WRITE: "register schema versions and set a schema's compatibility mode",
        MONITORING_READ: "query the tenant's metric series",
        ALERTS_READ: "read the tenant's alert rules, where their alerts stand, and its silences",
        ALERTS_WRITE: "set and delete the tenant's alert rules; create, change and expire silences",
        FIXTURES_READ: "list, read and render the tenant's Slack alert templates (fixtures)",
        FIXTURES_WRITE: "create, update and delete the tenant's Slack alert templates",
        AI_READ: "list the tenant's models and training jobs, and ask its models for predictions",
        AI_TRAIN: "train the tenant's models and promote their versions",
        PERFORMANCE_READ: "read the process's performance signals, bottlenecks and trends "
        "(platform only)",
        PERFORMANCE_WRITE: "run an optimization round that changes the process's knobs "
        "(platform only)",
        WORKFLOWS_READ: "list and read the tenant's workflows, their steps' history and the "
        "definitions they can start",
        WORKFLOWS_RUN: "start the tenant's workflows and cancel them",
        WORKFLOWS_OPERATE: "resume or compensate the tenant's parked workflows",
        DASHBOARD_READ: "sign in to the web dashboard and read the tenant's figures on it "
        "(the platform: every tenant's)",
    }
)


def is_action(action: object) -> bool:
    """``True`` for an action of the catalogue."""
    return isinstance(action, str) and action in ACTIONS

"""The one exception hierarchy of tenantry.

Every error the library raises on purpose is a :class:`TenantryError`. The classes carry no HTTP
status codes: ``tenantry.api.errors`` maps them to problem+json responses in one place.

    TenantryError
    ├── ConfigError                 a setting is missing or invalid
    ├── InvalidInput                the caller passed something malformed; nothing was changed
    │   ├── InvalidTenantId
    │   ├── ContentTooLarge         a request body or a stored value is larger than allowed
    │   ├── TemplateError           a template does not compile, or its rendering broke a rule
    │   │                           of the sandbox or one of its caps (size, time, loops)
    │   └── SchemaViolation         content does not match its schema (every violation listed)
    ├── NotFound                    the thing does not exist (or belongs to another tenant)
    │   ├── TenantNotFound
    │   ├── SettingNotFound
    │   ├── MetadataNotFound
    │   └── SchemaNotFound
    ├── Conflict                    the thing exists already, or the state forbids the change
    │   ├── TenantExists
    │   ├── TenantNotActive
    │   ├── VersionConflict         an update names a version that is no longer the current one
    │   ├── FeatureDisabled         a setting turns the feature off (ML_MODELS_ENABLED=false)
    │   ├── ModelFileRejected       a stored model file fails its SHA-256 or holds a type outside
    │   │                           the allow-list: it is not loaded
    │   └── IncompatibleSchema      a schema version breaks its subject's compatibility mode
    ├── AuthenticationError         no or wrong credentials
    │   └── StepUpRequired          the action needs a fresh passkey assertion
    ├── PermissionDenied            authenticated, but the policy does not allow the action
    ├── TenantContextError          code ran without a tenant, or tried to switch tenants inside one
    │   └── KeysNotLoaded           a synchronous seal/open before ``await keyring.load(tenant)``
    ├── DecryptionError             a ciphertext does not open for this tenant, purpose, record
    │   └── KeysDestroyed           the tenant's keys were destroyed (crypto-shredding)
    ├── AuditVerificationError      the audit log or a proof or checkpoint does not verify
    ├── BackendUnavailable          a backend (replica, Redis, HTTP endpoint) cannot take the call
    │   ├── CircuitOpen             its breaker is open
    │   ├── BulkheadFull            the tenant's share of it is in use
    │   ├── RateLimited             the tenant sends more requests a second than its tier allows
    │   ├── RetryBudgetExhausted    retries would exceed the budget
    │   └── KubernetesApiError      the Kubernetes API refused a call or could not be reached
    └── DatabaseError               the database refused or could not be reached
        ├── DatabaseUnavailable
        │   └── AuditUnavailable    a change's audit entry could not be written: no change
        ├── TransactionRolledBack
        ├── ReferenceMissing        a foreign key points at nothing (usually: no such tenant)
        └── IsolationViolation      a row-level security policy refused a write
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AuditUnavailable",
    "AuditVerificationError",
    "AuthenticationError",
    "BackendUnavailable",
    "BulkheadFull",
    "CircuitOpen",
    "ConfigError",
    "Conflict",
    "ContentTooLarge",
    "DatabaseError",
    "DatabaseUnavailable",
    "DecryptionError",
    "FeatureDisabled",
    "IncompatibleSchema",
    "InvalidInput",
    "InvalidTenantId",
    "IsolationViolation",
    "Issue",
    "KeysDestroyed",
    "KeysNotLoaded",
    "KubernetesApiError",
    "MetadataNotFound",
    "ModelFileRejected",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "ReferenceMissing",
    "RetryBudgetExhausted",
    "SchemaNotFound",
    "SchemaViolation",
    "SettingNotFound",
    "StepUpRequired",
    "StorageQuotaExceeded",
    "TemplateError",
    "TenantContextError",
    "TenantExists",
    "TenantNotActive",
    "TenantNotFound",
    "TenantryError",
    "TransactionRolledBack",
    "VersionConflict",
]

#: How many characters of a caller's value an error message quotes (:meth:`TenantryError.excerpt`).
_EXCERPT_CHARS = 64


@dataclass(frozen=True, slots=True)
class Issue:
    """One thing wrong with an input: where (``loc``: names and indexes), what, and its kind."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


class TenantryError(Exception):
    """Base class of every error tenantry raises on purpose."""

    #: A short, stable, human title (the problem+json ``title``).
    title = "tenantry error"

    def __init__(self, detail: str, *, issues: Sequence[Issue] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        #: Each thing that is wrong, when there are several (an answer's ``errors``).
        self.issues: tuple[Issue, ...] = tuple(issues)

    @staticmethod
    def excerpt(value: object, limit: int = _EXCERPT_CHARS) -> str:
        """``repr(value)`` cut to ``limit`` characters, for a message that quotes what a caller
        sent: a 10 KB header must not become a 10 KB error (``'xxxx…' (10000 characters)``)."""
        shown = repr(value)
        if len(shown) <= limit:
            return shown
        length = len(value) if isinstance(value, str) else len(shown)
        return f"{shown[:limit]}… ({length} characters)"


class ConfigError(TenantryError):
    title = "invalid configuration"


class InvalidInput(TenantryError):
    title = "invalid input"


class InvalidTenantId(InvalidInput):
    title = "invalid tenant id"


class ContentTooLarge(InvalidInput):
    title = "content too large"


class StorageQuotaExceeded(ContentTooLarge):
    """A write would take the tenant's stored metadata past its tier's ``storage_bytes``."""

    title = "storage quota exceeded"


class TemplateError(InvalidInput):
    title = "template error"


class NotFound(TenantryError):
    title = "not found"


class TenantNotFound(NotFound):
    title = "tenant not found"


class SettingNotFound(NotFound):
    title = "setting not found"


class MetadataNotFound(NotFound):
    title = "metadata not found"


class SchemaNotFound(NotFound):
    title = "schema not found"


class SchemaViolation(InvalidInput):
    title = "content does not match its schema"


class Conflict(TenantryError):
    title = "conflict"


class FeatureDisabled(Conflict):
    title = "feature disabled"


class ModelFileRejected(Conflict):
    title = "model file rejected"


class VersionConflict(Conflict):
    title = "stale version"


class IncompatibleSchema(Conflict):
    title = "incompatible schema"


class TenantExists(Conflict):
    title = "tenant exists"


class TenantNotActive(Conflict):
    title = "tenant not active"


class AuthenticationError(TenantryError):
    title = "authentication required"


class StepUpRequired(AuthenticationError):
    title = "step-up authentication required"


class PermissionDenied(TenantryError):
    title = "permission denied"


class DecryptionError(TenantryError):
    title = "cannot decrypt"


class KeysDestroyed(DecryptionError):
    title = "keys destroyed"


class AuditVerificationError(TenantryError):
    title = "audit verification failed"


class TenantContextError(TenantryError):
    title = "tenant context error"


class KeysNotLoaded(TenantContextError):
    title = "tenant keys not loaded"


class BackendUnavailable(TenantryError):
    title = "backend unavailable"

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        #: Seconds after which the same call may be taken, when that is known (an open breaker's
        #: remaining time, a full bulkhead lane's wait): an HTTP answer's ``Retry-After``.
        self.retry_after = retry_after


class KubernetesApiError(BackendUnavailable):
    title = "kubernetes api error"

    def __init__(self, detail: str, *, status: int | None = None, timed_out: bool = False) -> None:
        super().__init__(detail)
        #: The API's HTTP status (None: no answer: a timeout, a refused connection).
        self.status = status
        #: No answer in time.
        self.timed_out = timed_out


class CircuitOpen(BackendUnavailable):
    title = "circuit open"


class BulkheadFull(BackendUnavailable):
    title = "too many concurrent calls"


class RateLimited(BackendUnavailable):
    title = "rate limited"


class RetryBudgetExhausted(BackendUnavailable):
    title = "retry budget exhausted"


class DatabaseError(TenantryError):
    title = "database error"


class DatabaseUnavailable(DatabaseError):
    title = "database unavailable"


class AuditUnavailable(DatabaseUnavailable):
    title = "audit log unavailable"


class TransactionRolledBack(DatabaseError):
    title = "transaction rolled back"


class ReferenceMissing(DatabaseError):
    title = "referenced row missing"


class IsolationViolation(DatabaseError):
    title = "tenant isolation violation"

"""Enums, policies and shapes of the sessions domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from tenantry.levels import SecurityLevel
from tenantry.principal import ClientInfo

__all__ = [
    "BEHAVIOUR_MODEL",
    "ApiKeyCreate",
    "ApiKeyInfo",
    "BehaviourStep",
    "ExpiryPolicy",
    "IssuedApiKey",
    "RevokeOthers",
    "SessionCreate",
    "SessionInfo",
    "SessionIssued",
    "SessionPolicy",
    "SessionType",
    "StepUp",
]


class SessionType(StrEnum):
    USER = "user"
    API = "api"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    idle: timedelta
    absolute: timedelta


def _default_expiry() -> dict[tuple[SessionType, SecurityLevel], ExpiryPolicy]:
    def minutes(n: int) -> timedelta:
        return timedelta(minutes=n)

    def hours(n: int) -> timedelta:
        return timedelta(hours=n)

    def days(n: int) -> timedelta:
        return timedelta(days=n)

    table = {
        SessionType.USER: (
            (minutes(30), hours(12)),
            (minutes(15), hours(8)),
            (minutes(10), hours(4)),
        ),
        SessionType.API: ((hours(24), days(30)), (hours(8), days(7)), (hours(1), days(1))),
        SessionType.ADMIN: (
            (minutes(15), hours(4)),
            (minutes(10), hours(2)),
            (minutes(5), hours(1)),
        ),
    }
    return {
        (kind, level): ExpiryPolicy(*pair)
        for kind, pairs in table.items()
        for level, pair in zip(SecurityLevel, pairs, strict=True)
    }


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """Expiry per type and level; limits; throttles. Every field can be changed per manager."""

    expiry: dict[tuple[SessionType, SecurityLevel], ExpiryPolicy] = field(
        default_factory=_default_expiry
    )
    #: At most one ``last_seen`` write per session per this interval (validation stays a read).
    touch_interval: timedelta = timedelta(seconds=60)
    #: Concurrent sessions per user per tenant; creating one more evicts the oldest.
    max_sessions_per_user: int = 10
    #: How long a passkey step-up counts for admin actions of ADMIN sessions at CRITICAL+.
    step_up_max_age: timedelta = timedelta(minutes=5)
    #: How long a validated session stays in the L1/L2 cache before the database is read again.
    cache_ttl: float = 60.0

    def for_session(self, kind: SessionType, level: SecurityLevel) -> ExpiryPolicy:
        return self.expiry[(kind, level)]


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_-]{2,62}$",
        description="the caller's tenant (the default); another one is answered 404",
    )
    user_id: str = Field(min_length=1, max_length=200)
    session_type: SessionType = SessionType.USER
    security_level: SecurityLevel = SecurityLevel.HIGH
    client: ClientInfo | None = None
    passkey_challenge_id: str | None = Field(default=None, max_length=200)
    passkey_credential: dict[str, Any] | None = None


class SessionIssued(BaseModel):
    session_id: str
    token: str
    idle_expires_at: datetime
    absolute_expires_at: datetime


class SessionInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    session_id: str
    user_id: str
    session_type: SessionType
    security_level: SecurityLevel
    created_at: datetime
    last_seen_at: datetime
    idle_expires_at: datetime
    absolute_expires_at: datetime
    revoked_at: datetime | None = None
    ip: str | None = None
    user_agent: str | None = None
    device_id: str | None = None


#: The behaviour model's name and type in each tenant's AI registry (:mod:`tenantry.ai`).
BEHAVIOUR_MODEL = "session_behaviour"


@dataclass(frozen=True, slots=True)
class BehaviourStep:
    """What one step of the behaviour learner did for a tenant
    (:meth:`~tenantry.sessions.learner.BehaviourLearner.learn`)."""

    tenant_id: str
    taken: int = 0  # sessions taken (each is taken once, ever)
    learned: int = 0  # of them, added to the tenant's training set
    anomalous: int = 0  # scored at or above the threshold: never learned from
    too_short: int = 0  # fewer activities than the learner's minimum: nothing to learn
    samples: int = 0  # the training set's size after the step
    model_version: int = 0  # the registry's champion version after the step (0: none)
    trained: bool = False  # whether this step stored a new version and made it champion
    more: bool = False  # a full batch was taken: more sessions may be ready
    purged: bool = False  # the tenant is deleted: its samples and model were dropped


class StepUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge_id: str = Field(min_length=1, max_length=200)
    credential: dict[str, Any]


class RevokeOthers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    except_session: str | None = Field(default=None, max_length=200)


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    service_account: str = Field(min_length=1, max_length=200)
    #: Each an action, ``<domain>:*`` or ``*`` (checked by ``ApiKeys.create``, 422 otherwise).
    scopes: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=64)
    expires_in_days: int | None = Field(default=90, ge=1, le=3650)


class ApiKeyInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    key_id: str
    name: str
    service_account: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class IssuedApiKey(ApiKeyInfo):
    key: str

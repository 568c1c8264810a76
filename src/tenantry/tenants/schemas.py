"""Input and output shapes of the tenants domain."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from tenantry.context import TENANT_ID_PATTERN

__all__ = [
    "SETTING_KEY_PATTERN",
    "TRANSITIONS",
    "Setting",
    "SettingWrite",
    "Tenant",
    "TenantCreate",
    "TenantId",
    "TenantStatus",
    "TenantStatusUpdate",
    "TenantTier",
]

TenantId = Annotated[str, Field(pattern=TENANT_ID_PATTERN, examples=["aurora-records"])]
SETTING_KEY_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"


class TenantTier(StrEnum):
    FREE = "free"
    STANDARD = "standard"
    PREMIUM = "premium"
    ENTERPRISE = "enterprise"


class TenantStatus(StrEnum):
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ARCHIVED = "archived"
    DELETED = "deleted"


#: The changes of status a tenant may go through: provisioning → active; active ⇄ suspended;
#: active or suspended → archived → active (restored); any but deleted → deleted, which is final.
TRANSITIONS: Final[Mapping[TenantStatus, frozenset[TenantStatus]]] = MappingProxyType(
    {
        TenantStatus.PROVISIONING: frozenset({TenantStatus.ACTIVE, TenantStatus.DELETED}),
        TenantStatus.ACTIVE: frozenset(
            {TenantStatus.SUSPENDED, TenantStatus.ARCHIVED, TenantStatus.DELETED}
        ),
        TenantStatus.SUSPENDED: frozenset(
            {TenantStatus.ACTIVE, TenantStatus.ARCHIVED, TenantStatus.DELETED}
        ),
        TenantStatus.ARCHIVED: frozenset({TenantStatus.ACTIVE, TenantStatus.DELETED}),
        TenantStatus.DELETED: frozenset(),
    }
)


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: TenantId
    display_name: str = Field(min_length=1, max_length=200)
    tier: TenantTier = TenantTier.FREE


class TenantStatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: TenantStatus


class Tenant(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    display_name: str
    tier: TenantTier
    status: TenantStatus
    created_at: datetime
    updated_at: datetime


class SettingWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: JsonValue


class Setting(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    value: Any
    updated_at: datetime

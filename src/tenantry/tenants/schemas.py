"""Input and output shapes of the tenants domain."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from tenantry.context import TENANT_ID_PATTERN

__all__ = [
    "SETTING_KEY_PATTERN",
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

"""Tier policies: each tier's quotas and data retention, from ``tiers.toml`` and a deployment's
own file over it (``TENANTRY_TIER_POLICIES``).

``tiers.toml`` (shipped next to this module) documents every key. A deployment's file replaces
values tier by tier and key by key (``[enterprise] requests_per_second = 5000``); a key it does
not name keeps the shipped value. An unknown tier or key, a value of the wrong type or out of
bounds is a :class:`~tenantry.errors.ConfigError` naming it, at start-up: a policy is never
half-applied. ``create_tenant_lifecycle(tenant, lifecycle_policy="enterprise_tier")`` names a
tier as ``<tier>_tier`` (or the tier alone).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any, Final

from tenantry.config import load_settings
from tenantry.errors import ConfigError, InvalidInput
from tenantry.levels import SecurityLevel
from tenantry.tenants.schemas import TenantTier

__all__ = [
    "RETENTION_KINDS",
    "SHIPPED_POLICIES",
    "TierPolicy",
    "load_policies",
    "policies",
    "tier_of_policy",
]

SHIPPED_POLICIES: Final = Path(__file__).with_name("tiers.toml")
#: The kinds of data a tier keeps for a number of days (``[tier.retention_days]``).
RETENTION_KINDS: Final = ("metrics", "security_events", "workflows", "alert_deliveries")
_LIMITS: Final = {
    "requests_per_second": (1, 1_000_000),
    "storage_bytes": (1024, 1 << 50),
    "sessions": (1, 100_000_000),
    "cache_bytes": (64 * 1024, 64 << 30),
    "workflow_concurrency": (1, 1024),
    "metric_series": (1, 100_000),
}


@dataclass(frozen=True, slots=True)
class TierPolicy:
    """What a tenant of ``tier`` may use, and how long each kind of its data is kept."""

    tier: TenantTier
    requests_per_second: int
    storage_bytes: int
    sessions: int
    cache_bytes: int
    workflow_concurrency: int
    metric_series: int
    security_level: SecurityLevel
    retention_days: Mapping[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier.value,
            **{k: getattr(self, k) for k in _LIMITS},
            "security_level": self.security_level.value,
            "retention_days": dict(self.retention_days),
        }


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read the tier policies {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the tier policies {path} are not TOML: {exc}") from None


def _merge(base: dict[str, Any], over: Mapping[str, Any], where: str) -> None:
    for tier, values in over.items():
        if tier not in base:
            raise ConfigError(f"{where}: unknown tier {tier!r} (the tiers are {', '.join(base)})")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{where}: [{tier}] is a table of values")
        for key, value in values.items():
            if key == "retention_days" and isinstance(value, Mapping):
                base[tier].setdefault("retention_days", {}).update(value)
            else:
                base[tier][key] = value


def _policy(tier: str, values: Mapping[str, Any], where: str) -> TierPolicy:
    known = {f.name for f in fields(TierPolicy)} - {"tier"}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) of [{tier}]: {', '.join(sorted(unknown))}")
    checked: dict[str, Any] = {}
    for key, (low, high) in _LIMITS.items():
        value = values.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{where}: [{tier}] {key} is a whole number from {low} to {high}")
        checked[key] = value
    try:
        level = SecurityLevel(str(values.get("security_level")))
    except ValueError:
        raise ConfigError(
            f"{where}: [{tier}] security_level is high, critical or quantum"
        ) from None
    days = values.get("retention_days", {})
    if (
        not isinstance(days, Mapping)
        or set(days) != set(RETENTION_KINDS)
        or not all(
            isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 36_500
            for d in days.values()
        )
    ):
        raise ConfigError(
            f"{where}: [{tier}.retention_days] gives {', '.join(RETENTION_KINDS)}, "
            "each a whole number of days from 1 to 36,500"
        )
    return TierPolicy(TenantTier(tier), **checked, security_level=level, retention_days=dict(days))


def load_policies(path: Path | None = None) -> dict[TenantTier, TierPolicy]:
    """The shipped policies, with ``path``'s values over them when given."""
    merged = _read(SHIPPED_POLICIES)
    where = str(SHIPPED_POLICIES)
    if path is not None:
        _merge(merged, _read(path), str(path))
        where = str(path)
    missing = {t.value for t in TenantTier} - set(merged)
    if missing:
        raise ConfigError(f"{where}: no policy for tier(s) {', '.join(sorted(missing))}")
    return {TenantTier(t): _policy(t, v, where) for t, v in merged.items()}


def policies(path: Path | None = None) -> dict[TenantTier, TierPolicy]:
    """The policies in force: the shipped ones with ``path``'s (default: the file
    ``TENANTRY_TIER_POLICIES`` names, if any) over them; read once per path."""
    return _cached(load_settings().tier_policies if path is None else path)


@cache
def _cached(path: Path | None) -> dict[TenantTier, TierPolicy]:
    return load_policies(path)


def tier_of_policy(name: str) -> TenantTier:
    """The tier a lifecycle policy names: ``enterprise_tier`` or ``enterprise``."""
    if not isinstance(name, str):
        raise InvalidInput("a lifecycle policy is a tier's name, as 'enterprise_tier'")
    try:
        return TenantTier(name.removesuffix("_tier"))
    except ValueError:
        tiers = ", ".join(f"{t.value}_tier" for t in TenantTier)
        raise InvalidInput(
            f"unknown lifecycle policy {InvalidInput.excerpt(name)}: one of {tiers}"
        ) from None

"""The public API is what ``__all__`` says, and every name in it exists."""

from __future__ import annotations

import importlib

import pytest

import tenantry

MODULES = [
    "tenantry",
    "tenantry.config",
    "tenantry.context",
    "tenantry.errors",
    "tenantry.db",
    "tenantry.tenants",
    "tenantry.api",
    "tenantry.cache",
    "tenantry.connections",
    "tenantry.access",
    "tenantry.passkeys",
    "tenantry.sessions",
    "tenantry.security",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_only_existing_names(name: str) -> None:
    module = importlib.import_module(name)
    assert sorted(set(module.__all__)) == sorted(module.__all__), "duplicates in __all__"
    for member in module.__all__:
        assert hasattr(module, member), f"{name}.__all__ names {member!r}, which is missing"


def test_the_package_exports_its_own_members() -> None:
    for name in tenantry.__all__:
        member = getattr(tenantry, name)
        module = getattr(member, "__module__", "tenantry")
        assert module.startswith("tenantry"), f"tenantry.{name} comes from {module}"


def test_every_error_is_a_tenantry_error() -> None:
    from tenantry import errors  # noqa: PLC0415

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.TenantryError)

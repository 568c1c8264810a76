"""The tenant context: validation, nesting, and isolation between concurrent tasks."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantry.context import current_tenant, get_tenant, tenant_scope, validate_tenant_id
from tenantry.errors import InvalidTenantId, TenantContextError

VALID = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{2,62}\Z")


@given(VALID)
def test_valid_ids_are_accepted(tenant_id: str) -> None:
    assert validate_tenant_id(tenant_id) == tenant_id


@given(st.text(max_size=80))
def test_anything_else_is_rejected(candidate: str) -> None:
    import re  # noqa: PLC0415

    if re.fullmatch(r"[a-z0-9][a-z0-9_-]{2,62}", candidate):
        assert validate_tenant_id(candidate) == candidate
    else:
        with pytest.raises(InvalidTenantId, match="invalid tenant id"):
            validate_tenant_id(candidate)


@pytest.mark.parametrize(
    "bad", [None, 42, "Acme", "ab", "_abc", "a" * 64, "acme\n", "acmé", "a'b;c"]
)
def test_known_bad_ids(bad: object) -> None:
    with pytest.raises(InvalidTenantId):
        validate_tenant_id(bad)


@pytest.mark.parametrize("bad", ["X" * 10_000, ["a"] * 5_000, "é" * 300])
def test_a_long_bad_id_is_quoted_cut_short(bad: object) -> None:
    with pytest.raises(InvalidTenantId) as refused:
        validate_tenant_id(bad)
    detail = refused.value.detail
    assert len(detail) < 250
    assert repr(bad)[:64] in detail
    assert "characters)" in detail


def test_scope_sets_and_restores() -> None:
    assert current_tenant() is None
    with tenant_scope("label-one"):
        assert get_tenant() == "label-one"
        with tenant_scope("label-one"):
            assert get_tenant() == "label-one"
        assert get_tenant() == "label-one"
    assert current_tenant() is None
    with pytest.raises(TenantContextError):
        get_tenant()


def test_scope_refuses_to_switch_tenants() -> None:
    with (
        tenant_scope("label-one"),
        pytest.raises(TenantContextError, match="label-two"),
        tenant_scope("label-two"),
    ):
        pass


async def test_concurrent_tasks_keep_their_own_tenant() -> None:
    seen: dict[str, list[str | None]] = {}

    async def work(tenant_id: str) -> None:
        with tenant_scope(tenant_id):
            for _ in range(20):
                await asyncio.sleep(0)
                seen.setdefault(tenant_id, []).append(current_tenant())

    await asyncio.gather(*(work(f"tenant-{i}") for i in range(10)))
    assert all(set(values) == {tenant} for tenant, values in seen.items())

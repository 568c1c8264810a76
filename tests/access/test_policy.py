"""The policy: role hierarchy, deny by default, API-key scopes, the decision cache."""

from __future__ import annotations

import pytest

from tenantry import actions as a
from tenantry.access import ACTIONS, AccessControl, Policy, Principal, PrincipalKind
from tenantry.access.manager import scope_allows
from tenantry.errors import InvalidInput, PermissionDenied


def user(*roles: str) -> Principal:
    return Principal("acme-records", "user-1", PrincipalKind.SESSION, frozenset(roles))


def api_key(*scopes: str) -> Principal:
    return Principal(
        "acme-records",
        "key-1",
        PrincipalKind.API_KEY,
        frozenset({"service"}),
        scopes=frozenset(scopes),
    )


@pytest.fixture(scope="module")
def access() -> AccessControl:
    return AccessControl()  # decisions need no database


def test_roles_inherit_upwards(access: AccessControl) -> None:
    policy = access.policy
    viewer, editor, admin = (policy.actions_of(r) for r in ("viewer", "editor", "admin"))
    assert viewer < editor < admin
    assert a.SETTINGS_READ in viewer
    assert a.SETTINGS_WRITE not in viewer
    assert a.SETTINGS_WRITE in editor
    assert a.ROLES_MANAGE in admin - editor
    assert a.TENANTS_ADMIN not in admin
    assert a.CONNECTIONS_ADMIN not in admin


@pytest.mark.parametrize("action", [a.TENANTS_ADMIN, a.CONNECTIONS_ADMIN, a.METRICS_READ])
def test_platform_may_do_everything_and_only_it_administers(
    access: AccessControl, action: str
) -> None:
    assert access.policy.actions_of("platform") == frozenset(ACTIONS)
    holders = {
        role
        for role in ("viewer", "editor", "admin", "service", "platform")
        if action in access.policy.actions_of(role)
    }
    assert holders == {"platform"}


@pytest.mark.parametrize(
    ("principal", "action"),
    [
        (user(), a.SETTINGS_READ),  # no role
        (user("superuser"), a.SETTINGS_READ),  # unknown role
        (user("viewer"), "settings:delete"),  # unknown action
        (user("platform"), "anything:at-all"),  # even the platform: unknown action
        (user("platform"), "*"),
        (user("admin"), ""),
        (user("viewer"), a.SETTINGS_WRITE),
        (user("editor"), a.TENANTS_ADMIN),
    ],
)
def test_deny_by_default(access: AccessControl, principal: Principal, action: str) -> None:
    assert not access.allowed(principal, action)
    with pytest.raises(PermissionDenied):
        access.check(principal, action)


def test_several_roles_combine(access: AccessControl) -> None:
    assert access.allowed(user("viewer", "service"), a.SETTINGS_WRITE)
    assert access.allowed(user("nonsense", "editor"), a.SETTINGS_WRITE)


def test_api_keys_are_limited_by_their_scopes(access: AccessControl) -> None:
    assert access.allowed(api_key(a.SETTINGS_READ), a.SETTINGS_READ)
    assert not access.allowed(api_key(a.SETTINGS_READ), a.SETTINGS_WRITE)
    assert not access.allowed(api_key(), a.SETTINGS_READ)
    assert access.allowed(api_key("settings:*"), a.SETTINGS_WRITE)
    assert not access.allowed(api_key("settings:*"), a.CACHE_READ)
    assert access.allowed(api_key("*"), a.CACHE_READ)
    # a scope cannot lift an API key above its role
    assert not access.allowed(api_key("*", a.ROLES_MANAGE), a.ROLES_MANAGE)
    assert not access.allowed(api_key("*"), a.TENANTS_ADMIN)
    # scopes only narrow API keys: a session's scopes are not consulted
    assert access.allowed(user("viewer"), a.SETTINGS_READ)


def test_scope_matching() -> None:
    assert scope_allows(frozenset({"sessions:*"}), a.SESSIONS_REVOKE)
    assert not scope_allows(frozenset({"sessions"}), a.SESSIONS_REVOKE)
    assert not scope_allows(frozenset({"session:*"}), a.SESSIONS_REVOKE)


def test_decisions_are_cached_and_a_policy_change_clears_them() -> None:
    access = AccessControl(policy=Policy())
    assert not access.allowed(user("viewer"), a.SECURITY_READ)
    assert access.allowed(user("viewer"), a.SETTINGS_READ)
    assert access.policy.cached_decisions == 2
    access.allowed(user("viewer"), a.SETTINGS_READ)
    assert access.policy.cached_decisions == 2

    access.policy.grant("viewer", a.SECURITY_READ)
    assert access.policy.cached_decisions == 0
    assert access.allowed(user("viewer"), a.SECURITY_READ)
    assert access.allowed(user("editor"), a.SECURITY_READ)  # inherited at once

    access.policy.revoke("viewer", a.SECURITY_READ)
    assert not access.allowed(user("viewer"), a.SECURITY_READ)
    assert access.allowed(user("admin"), a.SECURITY_READ)  # admin holds it itself


def test_policies_are_independent() -> None:
    first, second = Policy(), Policy()
    first.grant("viewer", a.API_KEYS_MANAGE)
    assert first.decide(frozenset({"viewer"}), a.API_KEYS_MANAGE)
    assert not second.decide(frozenset({"viewer"}), a.API_KEYS_MANAGE)


@pytest.mark.parametrize(("role", "action"), [("root", a.SETTINGS_READ), ("viewer", "x:y")])
def test_bad_policy_changes_are_refused(role: str, action: str) -> None:
    policy = Policy()
    with pytest.raises(InvalidInput):
        policy.grant(role, action)
    with pytest.raises(InvalidInput):
        policy.revoke(role, action)


def test_the_catalogue_is_domain_verb_with_descriptions() -> None:
    required = {
        "tenants:admin",
        "settings:read",
        "settings:write",
        "cache:read",
        "connections:admin",
        "metrics:read",
        "sessions:create",
        "sessions:read",
        "sessions:revoke",
        "sessions:analytics",
        "api_keys:manage",
        "passkeys:register",
        "passkeys:authenticate",
        "security:read",
        "roles:manage",
    }
    assert required <= set(ACTIONS)
    for action, description in ACTIONS.items():
        domain, _, verb = action.partition(":")
        assert domain
        assert verb
        assert "*" not in action
        assert description

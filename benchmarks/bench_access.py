"""Access decisions: the cached ``AccessControl.allowed`` against casbin's ``enforce``.

DESIGN measured casbin ``enforce`` at 53 us a decision; the policy depends only on the caller's
roles and the action, so :class:`~tenantry.access.policy.Policy` caches decisions under
``(frozenset(roles), action)``. Every row cycles through the same mix of (principal, action)
pairs over all roles and actions (allowed and denied). Cached calls take well under a
microsecond, so they are timed in batches of ``BATCH`` and reported per call; casbin's
``enforce`` (the peer, one role per call, as the uncached path asks it) and the uncached
decision (cache cleared before each call) are timed one call at a time. The ratio column is how
many times slower than the cached session decision each row is.
"""

from __future__ import annotations

import itertools

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from tenantry.access import ACTIONS, AccessControl, Principal, PrincipalKind

__all__ = ["BENCHMARK"]

BATCH = 100
ROLES = ("viewer", "editor", "admin", "service", "platform")

CACHED = "access allowed(), cached decision, session"
CACHED_KEY = "access allowed(), cached decision, API key + scopes"
UNCACHED = "access allowed(), decision cache cleared"
ENFORCE = "casbin enforce(role, action), uncached (peer)"
OPERATIONS = (CACHED, CACHED_KEY, UNCACHED, ENFORCE)


def pairs(kind: PrincipalKind) -> list[tuple[Principal, str]]:
    scopes = frozenset({"settings:*", "cache:read"}) if kind is PrincipalKind.API_KEY else None
    principals = [
        Principal(
            "bench-tenant", f"p-{role}", kind, frozenset({role}), scopes=scopes or frozenset()
        )
        for role in ROLES
    ]
    return [(p, action) for p in principals for action in ACTIONS]


def verify(access: AccessControl) -> None:
    """The cached decisions are casbin's (before anyone times them)."""
    for principal, action in pairs(PrincipalKind.SESSION):
        (role,) = principal.roles
        assert access.allowed(principal, action) == access.policy.enforce(role, action)


def cases(access: AccessControl) -> list[Case]:
    sessions = itertools.cycle(pairs(PrincipalKind.SESSION))
    keys = itertools.cycle(pairs(PrincipalKind.API_KEY))
    raw = itertools.cycle([(role, a) for role in ROLES for a in ACTIONS])
    allowed, policy = access.allowed, access.policy

    async def cached() -> None:
        for _ in range(BATCH):
            allowed(*next(sessions))

    async def cached_key() -> None:
        for _ in range(BATCH):
            allowed(*next(keys))

    async def uncached() -> None:
        policy.invalidate()
        allowed(*next(sessions))

    async def enforce() -> None:
        policy.enforce(*next(raw))

    return [
        Case(CACHED, cached, batch=BATCH),
        Case(CACHED_KEY, cached_key, CACHED, BATCH),
        Case(UNCACHED, uncached, CACHED),
        Case(ENFORCE, enforce, CACHED),
    ]


async def run(env: Environment, plan: Plan) -> list[Row]:
    access = AccessControl()  # decisions need no database
    verify(access)
    return await run_cases(cases(access), plan, module="access")


BENCHMARK = Benchmark(name="access", operations=OPERATIONS, run=run)

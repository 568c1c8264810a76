"""SessionManager on the embedded PostgreSQL: tokens, expiry, limits, binding, revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import text

from tenantry.access.manager import AccessControl
from tenantry.cache import CacheManager
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import AuthenticationError, InvalidInput, NotFound
from tenantry.levels import SecurityLevel
from tenantry.principal import ClientInfo
from tenantry.sessions.manager import SessionManager, SessionManagerFactory
from tenantry.sessions.schemas import ExpiryPolicy, SessionPolicy, SessionType
from tenantry.sessions.tokens import hash_token, parse_token
from tenantry.threats.events import SecurityEvents
from tests.conftest import NewTenant


@pytest.fixture
def manager(db: Database) -> SessionManager:
    return SessionManager(db, cache=CacheManager(), events=SecurityEvents(db))


async def kinds_of_events(db: Database, tenant_id: str) -> list[str]:
    with tenant_scope(tenant_id):
        async with db.tenant_transaction() as conn:
            rows = await conn.execute(text("select kind from tenantry.security_events"))
            return [r.kind for r in rows]


async def test_create_and_validate(
    manager: SessionManager, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    await AccessControl(db).grant(tenant, "mira", "editor")
    session_id, token = await manager.create_session(
        tenant_id=tenant, user_id="mira", security_level=SecurityLevel.HIGH
    )
    assert session_id.startswith(f"ses_{tenant}.")
    assert token.startswith(f"tnt_s_{tenant}.")
    assert parse_token(token, "s").tenant_id == tenant
    principal = await manager.validate(token)
    assert principal.session_id == session_id
    assert principal.principal_id == "mira"
    assert principal.roles == frozenset({"editor"})
    assert (await manager.validate(token)).session_id == session_id  # cached
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            stored = await conn.scalar(text("select token_hash from tenantry.sessions"))
    assert bytes(stored) == hash_token(token)
    assert token.encode() not in bytes(stored)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "garbage",
        "tnt_s_x",
        "tnt_k_acme-records.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA000000",
        "Bearer tnt_s_",
        "tnt_s_acme." + "A" * 43 + "zzzzzz",
        "x" * 500,
    ],
)
async def test_malformed_tokens_are_refused(manager: SessionManager, bad: str) -> None:
    with pytest.raises(AuthenticationError):
        await manager.validate(bad)


async def test_unknown_token_is_refused_and_recorded(
    manager: SessionManager, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    _, token = await manager.create_session(tenant, "u1")
    forged = token[: len(f"tnt_s_{tenant}.")] + "B" * 43
    from tenantry.sessions.tokens import _checksum  # noqa: PLC0415 - to forge a well-formed one

    forged += _checksum(forged)
    with pytest.raises(AuthenticationError, match="invalid session token"):
        await manager.validate(forged)
    assert "failed_validation" in await kinds_of_events(db, tenant)


async def test_revoke_and_revoke_all(
    manager: SessionManager, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    ids_tokens = [await manager.create_session(tenant, "u1") for _ in range(3)]
    for _, token in ids_tokens:
        await manager.validate(token)
    await manager.revoke(ids_tokens[0][0])
    with pytest.raises(AuthenticationError, match="revoked"):
        await manager.validate(ids_tokens[0][1])
    assert "revoked_token_use" in await kinds_of_events(db, tenant)
    assert await manager.revoke_all(tenant, "u1", except_session=ids_tokens[2][0]) == 1
    with pytest.raises(AuthenticationError):
        await manager.validate(ids_tokens[1][1])
    assert (await manager.validate(ids_tokens[2][1])).session_id == ids_tokens[2][0]
    assert [s.session_id for s in await manager.list_sessions(tenant, "u1")] == [ids_tokens[2][0]]
    with pytest.raises(NotFound):
        await manager.revoke(f"ses_{tenant}.nope")
    with pytest.raises(NotFound):
        await manager.revoke("not-a-session-id")


async def test_expiry_idle_and_absolute(db: Database, new_tenant: NewTenant) -> None:
    """Each touch slides the idle expiry, never past the absolute one; no sleeps.

    time-machine moves the clock the manager reads (``datetime.now`` and ``time.time``, for
    creation, touches, the expiry check and the cache's freshness), and stops it between moves
    (``tick=False``), so the checks sit one second either side of each limit. Every move exceeds
    the cache TTL, so validation reloads from PostgreSQL what the last touch wrote.
    """
    tenant = (await new_tenant()).id
    idle, absolute = timedelta(minutes=30), timedelta(hours=4)
    second, step = timedelta(seconds=1), timedelta(minutes=25)
    policy = {(k, lv): ExpiryPolicy(idle, absolute) for k in SessionType for lv in SecurityLevel}
    manager = SessionManager(
        db,
        cache=CacheManager(),
        policy=SessionPolicy(expiry=policy, touch_interval=timedelta(minutes=1)),
    )
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        # Idle: 75 min in, well past the first idle limit, because each touch moved it.
        _, token = await manager.create_session(tenant, "u1")
        for _ in range(3):
            clock.shift(step)
            await manager.validate(token)
        clock.shift(idle - second)
        await manager.validate(token)
        clock.shift(idle + second)  # 30 min and 1 s after the last touch, far from absolute
        with pytest.raises(AuthenticationError, match="expired"):
            await manager.validate(token)
        assert await manager.list_sessions(tenant, "u1") == []

        # Absolute: touched every 25 min, the session still ends 4 h after its creation.
        _, token = await manager.create_session(tenant, "u2")
        for _ in range(9):
            clock.shift(step)
            await manager.validate(token)
        (live,) = await manager.list_sessions(tenant, "u2")
        assert live.idle_expires_at == live.absolute_expires_at  # capped, not touch + 30 min
        clock.shift(absolute - 9 * step - second)
        await manager.validate(token)
        clock.shift(2 * second)  # 2 s after a touch, but past the absolute limit
        with pytest.raises(AuthenticationError, match="expired"):
            await manager.validate(token)


async def test_touch_writes_are_throttled(
    manager: SessionManager, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    session_id, token = await manager.create_session(tenant, "u1")
    for _ in range(50):
        await manager.validate(token)
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            writes = await conn.scalar(
                text("select count(*) from tenantry.session_activity where session_id = :s"),
                {"s": session_id},
            )
    assert writes == 1  # the "create" row; the touch interval (60 s) has not passed


async def test_oldest_session_is_evicted_at_the_limit(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    manager = SessionManager(
        db, cache=CacheManager(), policy=SessionPolicy(max_sessions_per_user=2)
    )
    first = await manager.create_session(tenant, "u1")
    second = await manager.create_session(tenant, "u1")
    await manager.validate(first[1])
    third = await manager.create_session(tenant, "u1")
    with pytest.raises(AuthenticationError, match="revoked"):
        await manager.validate(first[1])
    assert {s.session_id for s in await manager.list_sessions(tenant, "u1")} == {
        second[0],
        third[0],
    }


async def test_critical_sessions_are_bound_to_their_device(
    manager: SessionManager, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    phone = ClientInfo(ip="192.0.2.10", user_agent="App/1", device_id="phone-1")
    _, token = await manager.create_session(tenant, "u1", security_level="critical", client=phone)
    await manager.validate(token, client=phone)
    with pytest.raises(AuthenticationError, match="another device"):
        await manager.validate(token, client=ClientInfo(device_id="laptop-9"))
    with pytest.raises(AuthenticationError, match="revoked"):
        await manager.validate(token, client=phone)
    assert "device_mismatch" in await kinds_of_events(db, tenant)
    _, high = await manager.create_session(tenant, "u1", client=phone)
    await manager.validate(high, client=ClientInfo(device_id="laptop-9"))  # HIGH: not bound


async def test_refresh_rotates_the_token(manager: SessionManager, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    session_id, token = await manager.create_session(tenant, "u1")
    same_id, fresh = await manager.refresh(token)
    assert same_id == session_id
    assert fresh != token
    assert (await manager.validate(fresh)).session_id == session_id
    with pytest.raises(AuthenticationError):
        await manager.validate(token)


async def test_bad_input_changes_nothing(manager: SessionManager, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    with pytest.raises(InvalidInput, match="SessionType"):
        await manager.create_session(tenant, "u1", session_type="superuser")
    with pytest.raises(InvalidInput, match="SecurityLevel"):
        await manager.create_session(tenant, "u1", security_level="military")
    with pytest.raises(InvalidInput, match="user_id"):
        await manager.create_session(tenant, "")
    with pytest.raises(InvalidInput, match="device"):
        await manager.create_session(tenant, "u1", security_level=SecurityLevel.CRITICAL)
    with pytest.raises(AuthenticationError, match="passkey"):
        await manager.create_session(
            tenant,
            "root",
            SessionType.ADMIN,
            SecurityLevel.QUANTUM,
            client=ClientInfo(device_id="root-laptop"),
        )
    assert await manager.list_sessions(tenant, "u1") == []
    assert await manager.list_sessions(tenant, "root") == []


async def test_sessions_are_tenant_isolated(manager: SessionManager, new_tenant: NewTenant) -> None:
    a, b = (await new_tenant()).id, (await new_tenant()).id
    session_a, _ = await manager.create_session(a, "same-user")
    await manager.create_session(b, "same-user")
    assert [s.session_id for s in await manager.list_sessions(a, "same-user")] == [session_a]
    with pytest.raises(NotFound):
        await manager.revoke(session_a, tenant_id=b)
    with pytest.raises(NotFound):
        await manager.session_info(session_a.replace(f"ses_{a}.", f"ses_{b}."))


async def test_sessions_survive_a_restart(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    _, token = await SessionManager(db, cache=CacheManager()).create_session(tenant, "u1")
    fresh_process = SessionManagerFactory.create_production_manager(db, cache=CacheManager())
    await fresh_process.initialize()
    assert (await fresh_process.validate(token)).principal_id == "u1"


async def test_a_revoke_during_a_validation_is_not_undone_by_its_cache_fill(
    manager: SessionManager, new_tenant: NewTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A validation that read the session before a revocation committed must not cache it as
    live after the revocation dropped the entry: the next validation would accept a revoked
    token until the entry expired (found by ``bench_load_faults``: a revoke answered 204, and
    the session still validated)."""
    tenant = (await new_tenant()).id
    session_id, token = await manager.create_session(tenant, "u1")
    load = manager._load

    async def load_then_revoke(*args: object, **kwargs: object) -> dict[str, object]:
        loaded = await load(*args, **kwargs)  # type: ignore[arg-type]
        await manager.revoke(session_id)  # commits and drops the entry: before the fill
        return loaded

    monkeypatch.setattr(manager, "_load", load_then_revoke)
    await manager.validate(token)  # began before the revocation: may still pass
    monkeypatch.setattr(manager, "_load", load)
    with pytest.raises(AuthenticationError, match="revoked"):
        await manager.validate(token)

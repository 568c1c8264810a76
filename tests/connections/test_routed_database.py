"""A ``Database`` routed through its ConnectionManager: what the app's lifespan sets up.

Every transaction the database opens goes through the manager (tenant lane, breaker, pool gate;
reads to a replica); calls made inside an open transaction join it and take nothing; a prologue
may wait for its lock; closing the manager ends the routing. Each test routes a ``Database`` of
its own, never the worker's shared one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tenantry.config import Settings
from tenantry.connections import ConnectionManager, PoolLimits
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import ConfigError, TenantContextError, TransactionRolledBack
from tests.conftest import NewTenant

SETTING = "select current_setting('tenantry.tenant_id', true)"
PROBE = "select current_setting('tenantry.probe', true)"
LOCK = "SELECT pg_advisory_xact_lock(7301, 1)"


@pytest.fixture
async def own_db(runtime: DatabaseRuntime) -> AsyncIterator[Database]:
    database = runtime.open_database()
    yield database
    await database.dispose()


def _lock_holder(
    db: Database, held: asyncio.Event, release: asyncio.Event
) -> Callable[[], Awaitable[None]]:
    """A coroutine function that takes ``LOCK`` in a transaction of ``db`` and holds it (``held``
    set) until ``release`` is."""

    async def hold() -> None:
        async with db.transaction() as conn:
            await conn.execute(text(LOCK))
            held.set()
            await release.wait()

    return hold


def manager_for(settings: Settings, db: Database, **options: object) -> ConnectionManager:
    knobs: dict[str, object] = {"health_interval": 0, "redis_url": "", **options}
    return ConnectionManager(settings, primary=db, **knobs)  # type: ignore[arg-type]


async def test_its_transactions_pass_the_manager_until_it_closes(
    settings: Settings, runtime: DatabaseRuntime, own_db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    manager = manager_for(settings, own_db, replicas=[runtime.app_url])
    async with manager:
        own_db.route_through(manager)
        assert own_db.router is manager
        with tenant_scope(tenant):
            async with own_db.tenant_transaction() as conn:  # the primary
                await conn.execute(
                    text(
                        "insert into tenantry.tenant_settings (tenant_id, key, value)"
                        " values (:t, 'routed', '1'::jsonb)"
                    ),
                    {"t": tenant},
                )
            async with own_db.tenant_read_transaction() as conn:  # the replica
                assert await conn.scalar(text(SETTING)) == tenant
                assert list(await conn.scalars(text("select key from tenantry.tenant_settings")))
            with pytest.raises(DBAPIError, match="read-only transaction"):
                async with own_db.tenant_read_transaction() as conn:  # READ ONLY anywhere
                    await conn.execute(text("delete from tenantry.tenant_settings"))
            async with own_db.transaction() as conn:  # no tenant context, the tenant's lane
                assert await conn.scalar(text(SETTING)) in (None, "")
        async with own_db.read_transaction() as conn:
            await conn.execute(text("select 1"))
        calls = {m.name: m.stats.calls for m in manager.members}
        assert calls == {"postgres": 2, "postgres-replica-1": 3}
        assert manager.member("postgres-replica-1").stats.failures == 0  # the caller's fault
        lanes = manager.primary_member.pool.bulkhead  # type: ignore[union-attr]
        assert lanes.admitted == 2  # the tenant's write and its unscoped transaction
        assert manager.replicas[0].pool.bulkhead.admitted == 2  # the tenant's reads
    assert own_db.router is None  # closing the manager ended the routing
    with tenant_scope(tenant):
        async with own_db.tenant_transaction() as conn:
            assert await conn.scalar(text("select count(*) from tenantry.tenant_settings")) == 1
    assert manager.member("postgres").stats.calls == 2


async def test_calls_inside_an_open_transaction_join_it_and_take_no_slot(
    settings: Settings, own_db: Database, new_tenant: NewTenant
) -> None:
    """The tenant's cap is 1 and a second slot is refused after 50 ms: had any nested call
    tried to take one, it would fail."""
    tenant = (await new_tenant()).id
    manager = manager_for(settings, own_db, pool_limits=PoolLimits(2, 2), bulkhead_timeout=0.05)
    async with manager:
        own_db.route_through(manager)
        lanes = manager.primary_member.pool.bulkhead  # type: ignore[union-attr]
        assert lanes.cap(tenant) == 1
        with tenant_scope(tenant):
            async with own_db.tenant_transaction() as outer:
                prologue = "SELECT set_config('tenantry.probe', 'joined', true)"
                async with own_db.tenant_transaction(prologue=prologue) as conn:
                    assert conn is outer
                    assert await conn.scalar(text(PROBE)) == "joined"  # the prologue ran
                async with own_db.tenant_read_transaction() as conn:
                    assert conn is outer
                async with manager.tenant_transaction(prologue=prologue) as conn:
                    assert conn is outer
                async with manager.tenant_read_transaction() as conn:
                    assert conn is outer
                assert await manager.run_read(lambda c: c.scalar(text(PROBE)), tenant_scoped=True)
                assert lanes.in_use(tenant) == 1
        assert lanes.admitted == 1
        assert lanes.rejected == 0
        assert manager.member("postgres").stats.calls == 1


async def test_a_prologue_may_wait_for_its_lock_longer_than_the_open_timeout(
    settings: Settings, runtime: DatabaseRuntime, own_db: Database, new_tenant: NewTenant
) -> None:
    """A lock held elsewhere is no failure of the server: the opening waits for it, is not cut
    at ``open_timeout``, retried, nor counted against the breaker."""
    tenant = (await new_tenant()).id
    other = runtime.open_database()  # holds the lock, and watches the waiter
    held, release = asyncio.Event(), asyncio.Event()
    hold = _lock_holder(other, held, release)

    async def waiting() -> int:
        async with other.transaction() as conn:
            return int(
                await conn.scalar(
                    text(
                        "select count(*) from pg_locks where locktype = 'advisory' and not granted"
                    )
                )
            )

    manager = manager_for(settings, own_db, open_timeout=0.05)
    try:
        async with manager:
            own_db.route_through(manager)
            holder = asyncio.create_task(hold())
            await held.wait()

            async def write() -> None:
                with tenant_scope(tenant):
                    async with own_db.tenant_transaction(prologue=LOCK) as conn:
                        await conn.execute(text("select 1"))

            writer = asyncio.create_task(write())
            for _ in range(1000):
                if await waiting():
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(manager.primary_member.open_timeout * 4)  # type: ignore[union-attr]
            assert not writer.done()
            release.set()
            await holder
            await writer  # no TimeoutError
            primary = manager.member("postgres")
            assert (primary.stats.calls, primary.stats.failures) == (1, 0)
            assert manager.budget.snapshot()["retries"] == 0
    finally:
        release.set()
        await other.dispose()


async def test_one_router_at_a_time(settings: Settings, own_db: Database) -> None:
    first, second = manager_for(settings, own_db), manager_for(settings, own_db)
    async with first, second:
        own_db.route_through(first)
        own_db.route_through(first)  # the same again: nothing changes
        with pytest.raises(ConfigError, match="another router"):
            own_db.route_through(second)
        await second.close()
        assert own_db.router is first  # closing a manager that does not route it changes nothing
        await first.close()
        assert own_db.router is None
        own_db.route_through(second)
        own_db.route_through(None)
        assert own_db.router is None


async def test_a_transaction_refused_on_opening_gives_its_slots_back(
    settings: Settings, own_db: Database, new_tenant: NewTenant
) -> None:
    """A member opens its transaction inside its guard (lane, breakers, pool gate): a refusal
    of the transaction itself (another tenant's scope) releases the guard like any failure."""
    tenant, other = (await new_tenant()).id, (await new_tenant()).id
    manager = manager_for(settings, own_db)
    async with manager:
        member = manager.primary_member
        assert member is not None
        for _ in range(3):
            with tenant_scope(other), pytest.raises(TenantContextError):
                await member.open(tenant, scoped=True)
        assert member.pool.gate.in_use == 0
        assert member.pool.bulkhead.snapshot()["in_use"] == 0
        with tenant_scope(tenant):
            opened = await member.open(tenant, scoped=True)
            async with opened as conn:
                assert await conn.scalar(text(SETTING)) == tenant
        assert member.pool.gate.in_use == 0


@pytest.mark.parametrize("routed", [False, True])
async def test_a_prologue_waits_for_its_lock_at_most_the_lock_wait(
    settings: Settings, runtime: DatabaseRuntime, new_tenant: NewTenant, routed: bool
) -> None:
    """A lock held past ``lock_wait`` ends the waiting transaction (the server gives up on the
    lock: :class:`TransactionRolledBack`, not counted against the breaker), so a routed opening
    with a prologue is bounded too; the connection goes on serving."""
    tenant = (await new_tenant()).id
    waiter = Database(runtime.app_url, pool_size=1, max_overflow=0, lock_wait=0.2)
    other = runtime.open_database()
    held, release = asyncio.Event(), asyncio.Event()
    hold = _lock_holder(other, held, release)

    manager = manager_for(settings, waiter, open_timeout=0.05)
    try:
        async with manager:
            if routed:
                waiter.route_through(manager)
            holder = asyncio.create_task(hold())
            await held.wait()
            started = asyncio.get_running_loop().time()
            with tenant_scope(tenant), pytest.raises(TransactionRolledBack, match="lock"):
                async with waiter.tenant_transaction(prologue=LOCK):
                    pass
            assert 0.15 < asyncio.get_running_loop().time() - started < 5
            release.set()
            await holder
            with tenant_scope(tenant):
                async with waiter.tenant_transaction(prologue=LOCK) as conn:
                    assert await conn.scalar(text(SETTING)) == tenant
                    assert await conn.scalar(text("show lock_timeout")) == "0"  # reset after it
            assert waiter.pool.stats()["checked_out"] == 0
            if routed:
                assert manager.member("postgres").stats.failures == 0
    finally:
        release.set()
        await other.dispose()
        await waiter.dispose()

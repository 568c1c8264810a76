"""The database's connection pool (tenantry.db.pool) on the real PostgreSQL: limits, waiters,
timeouts, cancellation, recycling and what is never handed out again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.db.engine import Database
from tenantry.db.pool import ConnectionPool
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import ConfigError, DatabaseUnavailable

PID = text("select pg_backend_pid()")


@pytest.fixture
async def small(runtime: DatabaseRuntime) -> AsyncIterator[Database]:
    """One pooled connection and one of overflow, a short wait."""
    database = Database(runtime.app_url, pool_size=1, max_overflow=1, pool_timeout=0.3)
    yield database
    await database.dispose()


async def _hold(database: Database, held: asyncio.Event, release: asyncio.Event) -> int:
    async with database.transaction() as conn:
        pid = int(await conn.scalar(PID))
        held.set()
        await release.wait()
        return pid


async def test_at_most_size_plus_overflow_are_open_and_waiters_go_first_come(
    small: Database,
) -> None:
    release = asyncio.Event()
    first, second = asyncio.Event(), asyncio.Event()
    holders = [
        asyncio.create_task(_hold(small, first, release)),
        asyncio.create_task(_hold(small, second, release)),
    ]
    await first.wait()
    await second.wait()
    assert small.pool.stats()["checked_out"] == 2
    order: list[int] = []

    async def waiter(n: int) -> None:
        pooled = await small.pool.acquire()
        order.append(n)  # the order they got a connection in
        await pooled.driver.fetchval("select 1")
        await small.pool.release(pooled)

    waiting = [asyncio.create_task(waiter(n)) for n in range(3)]
    await asyncio.sleep(0.05)
    assert small.pool.stats()["waiting"] == 3
    assert small.pool.stats()["checked_out"] == 2  # none opened beyond the limit
    release.set()
    await asyncio.gather(*holders, *waiting)
    assert order == [0, 1, 2]
    stats = small.pool.stats()
    assert stats["checked_out"] == 0
    assert stats["idle"] == 2  # the overflow connection stays open while idle a while
    assert stats["overflow"] == 1


async def test_an_overflow_connection_is_kept_while_busy_and_closed_once_idle(
    runtime: DatabaseRuntime,
) -> None:
    """A load hovering around ``size`` (one then two transactions at once, again and again)
    keeps reusing the same two connections; the one beyond ``size`` is closed once it has been
    idle ``overflow_idle`` seconds, when a connection is given back."""
    database = Database(runtime.app_url, pool_size=1, max_overflow=1, pool_overflow_idle=0.3)
    seen: set[int] = set()

    async def one(started: asyncio.Event | None, go: asyncio.Event | None) -> None:
        async with database.transaction() as conn:
            seen.add(int(await conn.scalar(PID)))
            if started is not None and go is not None:
                started.set()
                await go.wait()

    try:
        for _ in range(20):
            started, go = asyncio.Event(), asyncio.Event()
            holder = asyncio.create_task(one(started, go))
            await started.wait()
            await one(None, None)  # a second one at once: the overflow connection
            go.set()
            await holder
            await one(None, None)  # alone again: below size
        assert len(seen) == 2  # no connection was opened again
        assert database.pool.stats()["overflow"] == 1
        await asyncio.sleep(0.4)
        await one(None, None)  # giving one back closes the other, idle longer than 0.3 s
        assert database.pool.stats() == {
            "checked_out": 0,
            "idle": 1,
            "size": 1,
            "overflow": 0,
            "waiting": 0,
        }
    finally:
        await database.dispose()


async def test_a_caller_waits_at_most_the_timeout_and_nothing_leaks(small: Database) -> None:
    release = asyncio.Event()
    held = [asyncio.Event(), asyncio.Event()]
    holders = [asyncio.create_task(_hold(small, event, release)) for event in held]
    for event in held:
        await event.wait()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DatabaseUnavailable, match="no database connection was free"):
        async with small.transaction():
            pass
    assert 0.25 < loop.time() - started < 2
    release.set()
    await asyncio.gather(*holders)
    async with small.transaction() as conn:
        assert await conn.scalar(text("select 1")) == 1
    assert small.pool.stats() == {
        "checked_out": 0,
        "idle": 2,  # both places kept: the overflow one is closed once idle a while
        "size": 1,
        "overflow": 1,
        "waiting": 0,
    }


async def test_a_cancelled_waiter_loses_no_connection(small: Database) -> None:
    release = asyncio.Event()
    held = [asyncio.Event(), asyncio.Event()]
    holders = [asyncio.create_task(_hold(small, event, release)) for event in held]
    for event in held:
        await event.wait()

    async def wait_then_run() -> None:
        async with small.transaction():
            pass

    cancelled = asyncio.create_task(wait_then_run())
    await asyncio.sleep(0.02)
    release.set()  # hand-overs and the cancellation race
    cancelled.cancel()
    await asyncio.gather(*holders)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    for _ in range(5):  # every place is usable again
        async with small.transaction() as conn:
            await conn.scalar(PID)
    assert small.pool.stats()["checked_out"] == 0
    assert small.pool.stats()["idle"] <= 2


async def test_an_old_connection_is_recycled(runtime: DatabaseRuntime) -> None:
    database = Database(runtime.app_url, pool_size=1, max_overflow=0, pool_recycle=0.2)
    try:
        async with database.transaction() as conn:
            first = await conn.scalar(PID)
        async with database.transaction() as conn:
            assert await conn.scalar(PID) == first  # young: reused
        await asyncio.sleep(0.3)
        async with database.transaction() as conn:
            assert await conn.scalar(PID) != first
        assert database.pool.stats()["idle"] == 1
    finally:
        await database.dispose()


async def test_a_connection_still_in_a_transaction_is_closed_not_reused(
    small: Database,
) -> None:
    pooled = await small.pool.acquire()
    pid = await pooled.driver.fetchval("select pg_backend_pid()")
    await pooled.driver.execute("BEGIN")
    await small.pool.release(pooled)
    assert small.pool.stats()["idle"] == 0
    assert pooled.driver.is_closed()
    async with small.transaction() as conn:
        assert await conn.scalar(PID) != pid


async def test_a_failed_connect_frees_its_place(runtime: DatabaseRuntime) -> None:
    database = Database(runtime.app_url, pool_size=1, max_overflow=0)
    failures = [OSError("connection refused")]

    async def flaky() -> AsyncConnection:
        if failures:
            raise failures.pop()
        return await database.engine.connect()

    pool = ConnectionPool(flaky, size=1, overflow=0, timeout=1, recycle=60)
    try:
        with pytest.raises(OSError, match="refused"):
            await pool.acquire()
        assert pool.stats()["checked_out"] == 0
        pooled = await pool.acquire()
        assert await pooled.driver.fetchval("select 1") == 1
        await pool.release(pooled)
        assert pool.stats()["idle"] == 1
    finally:
        await pool.close()
        await database.dispose()


async def test_a_closed_pool_refuses_and_closes_what_comes_back(
    runtime: DatabaseRuntime,
) -> None:
    database = Database(runtime.app_url, pool_size=2, max_overflow=0)
    pooled = await database.pool.acquire()
    await database.dispose()
    with pytest.raises(DatabaseUnavailable, match="closed"):
        await database.pool.acquire()
    await database.pool.release(pooled)
    assert pooled.driver.is_closed()
    assert database.pool.stats()["checked_out"] == 0


def test_the_pool_refuses_settings_that_cannot_work() -> None:
    async def never() -> AsyncConnection:
        raise AssertionError

    good = {"size": 1, "overflow": 0, "timeout": 1.0, "recycle": 1.0}
    for bad in (
        {"size": 0},
        {"overflow": -1},
        {"timeout": 0},
        {"recycle": 0},
        {"overflow_idle": -1.0},
    ):
        with pytest.raises(ConfigError, match="pool"):
            ConnectionPool(never, **(good | bad))  # type: ignore[arg-type]


async def test_a_server_that_never_answers_is_unavailable_within_the_connect_timeout(
    runtime: DatabaseRuntime,
) -> None:
    """A listener that accepts and then says nothing: the driver's connect timeout ends the
    wait, and the caller gets DatabaseUnavailable (no transaction was opened, nothing is held)."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = runtime.app_url.set(host="127.0.0.1", port=port, query={})  # TCP, not a socket dir
    database = Database(url, pool_size=1, connect_timeout=0.3)
    try:
        with pytest.raises(DatabaseUnavailable):
            async with database.transaction():
                pass
        assert database.pool.stats()["checked_out"] == 0
        assert accepted  # it did reach the listener
    finally:
        await database.dispose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()

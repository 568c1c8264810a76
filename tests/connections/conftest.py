"""Fixtures of the connections tests: the PostgreSQL server, Redis, proxies, a fake clock.

PostgreSQL replicas are the PostgreSQL 15 server of ``TENANTRY_TEST_DATABASE_URL`` reached
through a :class:`~tests.connections.proxy.TcpProxy` (the embedded server listens on a Unix
socket only); without that variable those tests are skipped, and fail when CI=true, like the
rest of the suite. Redis tests use ``TENANTRY_TEST_REDIS_URL`` the same way; kill tests run a
redis-server of their own.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy.engine import URL

from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tests.conftest import IN_CI, server_settings, started_runtime
from tests.connections.proxy import RedisProcess, TcpProxy

REDIS_URL = os.environ.get("TENANTRY_TEST_REDIS_URL")


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
async def pg_server() -> AsyncIterator[DatabaseRuntime]:
    """A migrated database on the PostgreSQL server (TCP), for proxied replicas."""
    runtime = await started_runtime(await server_settings("connections"))
    yield runtime
    await runtime.stop()


@pytest.fixture
async def primary(pg_server: DatabaseRuntime) -> AsyncIterator[Database]:
    database = Database(pg_server.app_url, pool_size=4, max_overflow=4)
    yield database
    await database.dispose()


ProxyFactory = Callable[[], Awaitable[TcpProxy]]


@pytest.fixture
async def proxies(pg_server: DatabaseRuntime) -> AsyncIterator[ProxyFactory]:
    """Make TCP proxies in front of the server's PostgreSQL; all closed at the end."""
    made: list[TcpProxy] = []
    url = pg_server.app_url

    async def make() -> TcpProxy:
        proxy = await TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        await proxy.close()


def through(url: URL, proxy: TcpProxy) -> URL:
    """``url`` reached through ``proxy``: a replica of the same database."""
    return url.set(host="127.0.0.1", port=proxy.port)


@pytest.fixture
def redis_url() -> str:
    if REDIS_URL is None:
        if IN_CI:
            pytest.fail("CI=true but TENANTRY_TEST_REDIS_URL is not set")
        pytest.skip("TENANTRY_TEST_REDIS_URL is not set")
    return REDIS_URL


@pytest.fixture
async def redis_process() -> AsyncIterator[RedisProcess]:
    if RedisProcess.executable() is None:
        if IN_CI:
            pytest.fail("CI=true but redis-server is not installed")
        pytest.skip("redis-server is not installed")
    process = RedisProcess()
    await process.start()
    yield process
    process.kill()

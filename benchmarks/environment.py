"""The database the benchmarks run on: a fresh, migrated ``tenantry_bench`` database.

Embedded mode (the default) starts tenantry's embedded PostgreSQL in a data directory of its own
(``benchmarks/results/data``), so it never shares a server with the tests. Server mode
(``--database-url``) uses the URL's database only as the admin connection that drops and
recreates ``tenantry_bench`` on that server; everything else happens in ``tenantry_bench``.
``TENANTRY_BENCH_DATA_DIR`` and ``TENANTRY_BENCH_DATABASE`` move both, for concurrent runs.
"""

from __future__ import annotations

import os
import platform
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from benchmarks.load import cpus
from tenantry.config import load_settings
from tenantry.db.bootstrap import quote_ident
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime

__all__ = ["BENCH_DATABASE", "DATA_DIR", "RESULTS_DIR", "Environment", "open_environment"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: Overridable so that two benchmark runs at once do not share a server or a database.
DATA_DIR = Path(os.environ.get("TENANTRY_BENCH_DATA_DIR", RESULTS_DIR / "data"))
BENCH_DATABASE = os.environ.get("TENANTRY_BENCH_DATABASE", "tenantry_bench")


@dataclass(frozen=True, slots=True)
class Environment:
    """What a benchmark module gets: the app's :class:`Database` and an admin URL."""

    mode: str  # "embedded" or "server"
    runtime: DatabaseRuntime
    db: Database
    admin_url: URL

    def admin_engine(self) -> AsyncEngine:
        """A pool-less autocommit engine as the admin user (superuser or migration user)."""
        return create_async_engine(self.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")

    async def machine_info(self) -> dict[str, Any]:
        engine = self.admin_engine()
        try:
            async with engine.connect() as conn:
                server_version = await conn.scalar(text("show server_version"))
        finally:
            await engine.dispose()
        return {
            "mode": self.mode,
            "cpu_count": os.cpu_count(),
            "cpus_usable": cpus(),  # this process's affinity: the load rows' process count
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "postgres": str(server_version),
            "sqlalchemy": version("sqlalchemy"),
            "asyncpg": version("asyncpg"),
            "event_loop": "asyncio",
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        }


async def recreate_database(admin_url: URL, name: str) -> None:
    """``DROP DATABASE ... WITH (FORCE)`` then ``CREATE DATABASE``, on ``admin_url``'s server."""
    engine = create_async_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)"))
            await conn.execute(text(f"CREATE DATABASE {quote_ident(name)}"))
    finally:
        await engine.dispose()


@asynccontextmanager
async def open_environment(database_url: str | None) -> AsyncIterator[Environment]:
    """Start (embedded) or reach (server) PostgreSQL, recreate and migrate the bench database."""
    given = make_url(database_url).set(drivername="postgresql+asyncpg") if database_url else None
    bench_url = given.set(database=BENCH_DATABASE) if given else None
    settings = load_settings(
        database_url=bench_url.render_as_string(hide_password=False) if bench_url else None,
        app_database_url=None,
        data_dir=DATA_DIR,
        embedded_database=BENCH_DATABASE,
    )
    runtime = DatabaseRuntime(settings)
    try:
        if runtime.embedded is not None:
            await runtime.embedded.start_async()
            await recreate_database(runtime.embedded.url("postgres"), BENCH_DATABASE)
        else:
            assert given is not None
            await recreate_database(given, BENCH_DATABASE)
        await runtime.start()
        await runtime.migrate()
        db = runtime.open_database()
        try:
            mode = "embedded" if runtime.embedded is not None else "server"
            yield Environment(mode=mode, runtime=runtime, db=db, admin_url=runtime.admin_url)
        finally:
            await db.dispose()
    finally:
        await runtime.stop()


async def reachable_redis(what: str) -> str | None:
    """The benchmarks' Redis URL (``TENANTRY_BENCH_REDIS_URL``) if it answers; else None, after
    saying that ``what`` is skipped."""
    url = os.environ.get("TENANTRY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    probe = Redis.from_url(url)
    try:
        await probe.ping()
    except (RedisError, OSError):
        print(f"{what} skipped: no Redis at {url}")
        return None
    finally:
        await probe.aclose()
    return url

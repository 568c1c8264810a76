"""What every ``tenantry`` command shares: running async work, and a migrated database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TypeVar

import typer

from tenantry.config import Settings, load_settings
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import ConfigError, TenantryError

__all__ = ["held_embedded_database", "migrated_database", "run_command"]

_T = TypeVar("_T")


def run_command(work: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``work``; a tenantry error becomes one line on stderr and exit code 1 (2: config)."""
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except ConfigError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    except TenantryError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


@asynccontextmanager
async def migrated_database(settings: Settings | None = None) -> AsyncIterator[Database]:
    """Start (embedded) or reach the database, migrate it, yield the app's pool, clean up."""
    runtime = DatabaseRuntime(settings or load_settings())
    await runtime.start()
    try:
        await runtime.migrate()
        database = runtime.open_database()
        try:
            yield database
        finally:
            await database.dispose()
    finally:
        await runtime.stop()


@contextmanager
def held_embedded_database(settings: Settings) -> Iterator[None]:
    """In ``tenantry serve --workers N``, before the workers start: the embedded PostgreSQL
    started, its database created and migrated by the command itself, and held until the
    workers have exited (then stopped). The workers join the running server: none of them
    initialises, creates or migrates concurrently with another, and the server stops with the
    command, not with whichever worker exits last. Server mode: nothing to do."""
    if not settings.embedded:
        yield
        return
    runtime = DatabaseRuntime(settings)

    async def begin() -> None:
        await runtime.start()
        await runtime.migrate()

    try:
        asyncio.run(begin())
        yield
    finally:
        asyncio.run(runtime.stop())

"""A PostgreSQL advisory lock held across work that spans several transactions.

:func:`advisory_lock` tries a session-level ``pg_try_advisory_lock`` on a connection of its own
(not one of the pool's: the work inside opens its transactions as usual), and holds it until the
block ends. It never waits: the block learns whether it holds the lock. A process that dies
holding it loses its connection, and the server releases the lock with it. For one process at a
time across every worker and node doing a piece of long work (an automatic training of one
tenant's model); short work holds ``pg_try_advisory_xact_lock`` in its transaction instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from tenantry.db.engine import Database

__all__ = ["advisory_lock"]


@asynccontextmanager
async def advisory_lock(database: Database, name: str) -> AsyncIterator[bool]:
    """Try to take the advisory lock ``name`` (hashed with ``hashtext``); yields whether it is
    held, released when the block ends."""
    async with database.engine.connect() as conn:
        held = bool(
            await conn.scalar(text("SELECT pg_try_advisory_lock(hashtext(:n))"), {"n": name})
        )
        try:
            yield held
        finally:
            if held:
                await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": name})

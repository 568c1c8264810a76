"""The process's default database, for managers made with no arguments.

The documents' Quick Example makes managers as ``SessionManager()``. Such a manager reads
:class:`~tenantry.config.Settings` from the environment and shares this one database: started
(embedded mode), migrated and pooled on first use, in the event loop that first used it.
"""

from __future__ import annotations

import asyncio
import atexit

from tenantry.config import load_settings
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime

__all__ = ["UsesDatabase", "default_database", "default_runtime"]

_databases: dict[asyncio.AbstractEventLoop, Database] = {}
_runtime: DatabaseRuntime | None = None
_lock = asyncio.Lock()


async def default_database() -> Database:
    """The shared :class:`Database` for the running event loop."""
    global _runtime  # noqa: PLW0603 - one runtime per process, by design
    loop = asyncio.get_running_loop()
    if (db := _databases.get(loop)) is not None:
        return db
    async with _lock:
        if (db := _databases.get(loop)) is not None:
            return db
        if _runtime is None:
            runtime = DatabaseRuntime(load_settings())
            await runtime.start()
            await runtime.migrate()
            if runtime.embedded is not None:
                atexit.register(runtime.embedded.stop)
            _runtime = runtime
        db = _databases[loop] = _runtime.open_database()
        return db


async def default_runtime() -> DatabaseRuntime:
    """The runtime behind :func:`default_database` (its admin URL builds what the owner must)."""
    await default_database()
    assert _runtime is not None  # noqa: S101 - default_database() set it
    return _runtime


class UsesDatabase:
    """For managers: ``self._database`` if one was given, else the process's default database.

    Subclasses set ``self._database`` (a :class:`Database` or None) in ``__init__``.
    """

    _database: Database | None

    async def _db(self) -> Database:
        if self._database is None:
            self._database = await default_database()
        return self._database

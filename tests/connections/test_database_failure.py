"""What counts against a database's breaker: the server's failures, never a refused statement,
whether SQLAlchemy or the driver (statements sent straight to asyncpg) raised it."""

from __future__ import annotations

import asyncpg
import pytest

from tenantry.connections.postgres import database_failure
from tenantry.errors import Conflict, DatabaseUnavailable


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed"),
        DatabaseUnavailable("lost"),
        ConnectionResetError("reset"),
    ],
)
def test_the_servers_failures_count(error: BaseException) -> None:
    assert database_failure(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.InsufficientPrivilegeError("row-level security"),
        Conflict("exists"),
    ],
)
def test_a_refused_statement_does_not(error: BaseException) -> None:
    assert not database_failure(error)

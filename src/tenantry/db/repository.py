"""Base repositories: SQL on a connection whose transaction the caller (the boundary) owns.

A :class:`TenantRepository` is only ever handed a connection from
:meth:`Database.tenant_transaction`, so PostgreSQL already limits every statement to the
current tenant; the repository writes ``tenant_id`` on inserts from the same context, and never
filters by tenant by hand.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

from tenantry.context import get_tenant
from tenantry.db.engine import translate_error
from tenantry.db.pool import driver_connection

__all__ = ["DriverQuery", "Repository", "TenantRepository"]

_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class DriverQuery:
    """A statement with ``:name`` parameters, for :meth:`Repository.fetch_driver`: its
    ``$n`` form and the names in order, worked out once. ``::type`` casts stay; a string
    literal must not hold `` :word`` (it would be taken for a parameter)."""

    sql: str
    names: tuple[str, ...]

    @classmethod
    def of(cls, sql: str) -> DriverQuery:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        return cls(_NAMED.sub(number, sql), tuple(names))

    @classmethod
    def compiled(cls, statement: ClauseElement) -> DriverQuery:
        """A typed SQLAlchemy Core statement, compiled once for asyncpg: its parameters are its
        ``bindparam`` names, in ``params`` at each call.

        For statements whose values and rows need no conversion by SQLAlchemy (text, numbers,
        booleans, ...): one whose parameters or columns have a type SQLAlchemy processes (JSON,
        for one, which asyncpg would hand back as a string) is refused with :class:`ValueError`,
        and so is one with a value bound in it (``column == 5``: bind a name instead) or an
        expanding ``IN``, neither of which compiles to one fixed statement.
        """
        compiled = statement.compile(dialect=_ASYNCPG)
        if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
            raise ValueError("not a statement with positional parameters")
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("an expanding or literal-execute parameter has no fixed statement")
        for name, bind in compiled.binds.items():
            if not bind.required:
                raise ValueError("a value is bound in the statement: bind a name instead")
            if _converts(bind.type, result=False):
                raise ValueError(f"parameter {name!r} needs SQLAlchemy's conversion")
        for column in compiled._result_columns:
            if _converts(column.type, result=True):
                raise ValueError(f"column {column.keyname!r} needs SQLAlchemy's conversion")
        return cls(compiled.string, tuple(compiled.positiontup))


_ASYNCPG = asyncpg_dialect()  # type: ignore[no-untyped-call]


def _converts(kind: TypeEngine[object], *, result: bool) -> bool:
    """Whether SQLAlchemy changes values of ``kind`` on their way to or from asyncpg.

    An ``ARRAY`` of a type it leaves alone counts as left alone: SQLAlchemy only makes lists of
    the sequences, and asyncpg takes any sequence and gives back lists itself.
    """
    if isinstance(kind, ARRAY):
        return _converts(kind.item_type, result=result)
    if result:
        return kind._cached_result_processor(_ASYNCPG, None) is not None
    return kind._cached_bind_processor(_ASYNCPG) is not None


class Repository:
    """SQL for the global tables (the tenant registry)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def fetch_driver(
        self, query: DriverQuery, params: Mapping[str, object]
    ) -> list[asyncpg.Record]:
        """Rows of ``query`` straight from asyncpg, on this transaction's connection: for hot
        reads, where SQLAlchemy's execution and row processing cost more than the query."""
        rows: list[asyncpg.Record] = await self._on_driver(query, params, rows=True)
        return rows

    async def execute_driver(self, query: DriverQuery, params: Mapping[str, object]) -> str:
        """Run ``query`` (a write) straight on asyncpg; its status (``INSERT 0 1``): for the
        hot writes, where SQLAlchemy's execution costs more than the statement."""
        status: str = await self._on_driver(query, params, rows=False)
        return status

    async def _on_driver(
        self, query: DriverQuery, params: Mapping[str, object], *, rows: bool
    ) -> Any:
        """``query`` on the transaction's asyncpg connection (its rows, or its status), the
        driver's errors in tenantry's words."""
        driver = driver_connection(self.conn)
        run = driver.fetch if rows else driver.execute
        try:
            return await run(query.sql, *(params[name] for name in query.names))
        except asyncpg.PostgresError as exc:
            raise translate_error(exc) from exc


class TenantRepository(Repository):
    """SQL for tenant-owned tables, inside a tenant transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self.tenant_id = get_tenant()

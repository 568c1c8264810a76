"""Slow statements from ``pg_stat_statements``, where the server has it.

The extension needs ``shared_preload_libraries = 'pg_stat_statements'`` on the server and
``CREATE EXTENSION pg_stat_statements`` in the database; without either, :meth:`top` answers
``available: False`` with the reason, and nothing else changes. A role without
``pg_read_all_stats`` sees the text of its own statements only (the others' read
``<insufficient privilege>``): the service's role is the one whose statements matter here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from tenantry.db.engine import Database
from tenantry.errors import TenantryError

__all__ = ["SlowStatement", "SlowStatements", "StatementReport"]

_PRESENT = text("select 1 from pg_extension where extname = 'pg_stat_statements'")
_TOP = text(
    "select queryid, left(query, 200) as query, calls, mean_exec_time, total_exec_time "
    "from pg_stat_statements where calls >= :calls "
    "order by mean_exec_time desc limit :limit"
)


@dataclass(frozen=True, slots=True)
class SlowStatement:
    queryid: str
    query: str
    calls: int
    mean_seconds: float
    total_seconds: float


@dataclass(frozen=True, slots=True)
class StatementReport:
    available: bool
    reason: str = ""
    statements: list[SlowStatement] = field(default_factory=list)


class SlowStatements:
    """Reads the slowest statements (by mean time) of ``database``'s server."""

    def __init__(self, database: Database, *, limit: int = 5, min_calls: int = 5) -> None:
        self.database, self.limit, self.min_calls = database, limit, min_calls

    async def top(self) -> StatementReport:
        try:
            async with self.database.transaction() as conn:
                if (await conn.execute(_PRESENT)).first() is None:
                    return StatementReport(
                        False, "the pg_stat_statements extension is not created in the database"
                    )
                rows = (
                    await conn.execute(_TOP, {"calls": self.min_calls, "limit": self.limit})
                ).all()
        except TenantryError as exc:  # not preloaded: the view refuses to be read
            return StatementReport(False, f"pg_stat_statements cannot be read: {exc.detail}")
        return StatementReport(True, "", [_statement(row._mapping) for row in rows])


def _statement(row: Any) -> SlowStatement:
    return SlowStatement(
        queryid=str(row["queryid"]),
        query=str(row["query"]),
        calls=int(row["calls"]),
        mean_seconds=float(row["mean_exec_time"]) / 1000,
        total_seconds=float(row["total_exec_time"]) / 1000,
    )

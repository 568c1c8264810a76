"""No cross-tenant joins in our SQL: every statement the package sends that touches two tenant
tables (or one twice) ties them by tenant_id, so on Citus it runs on one shard.

The SQL is parsed with PostgreSQL's own parser (pglast; tests/support/sql_joins.py): the
statements written in the package's Python, and those inside the PL/pgSQL functions of the
migrated database (a new one is checked without new test code; an exception needs a reason
here), and the SQLAlchemy Core statements that join or nest tenant tables, recorded as sent (a
new Core join needs its call added to the last test).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

import tenantry  # noqa: F401 - imports every domain, so the metadata holds every table
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.db.rls import tenant_tables
from tenantry.metadata.repository import MetadataRepository
from tenantry.sessions.repository import BehaviourRepository
from tests.conftest import ROOT, NewTenant
from tests.support.sql_joins import (
    Source,
    mentions_tenant_table,
    plpgsql_statements,
    problems,
    python_statements,
)

TENANT_TABLES = {t.name for t in tenant_tables()}

#: Statements not checked or not tied, each with the reason. Keyed by file (or function) and
#: the first words of the statement, so that moving a line does not matter.
EXCEPTIONS: dict[tuple[str, str], str] = {
    (
        "tenantry/metadata/search.py",
        "SELECT id, ts_rank_cd(search_tsv",
    ): "assembled at run time from the filters; one table (metadata_records), "
    "with tenant_id = :tenant",
    (
        "tenantry/workflows/repository.py",
        "UPDATE tenantry.workflows SET",
    ): "assembled at run time (the columns to set); one table, no join",
}


def _key(source: Source) -> tuple[str, str] | None:
    where = source.where.split(":")[0].removeprefix("src/")
    for (place, start), _ in EXCEPTIONS.items():
        if where == place and source.sql.lstrip().startswith(start):
            return (place, start)
    return None


def _check(sources: list[Source]) -> tuple[list[str], set[tuple[str, str]]]:
    found, excused = [], set()
    for source in sources:
        try:
            groups = problems(source.sql, TENANT_TABLES)
            failure = f"not tied by tenant_id: {groups}" if groups else None
        except Exception as exc:  # noqa: BLE001 - pglast's ParseError and friends
            failure = f"not parsed ({exc})"
        if failure is None:
            continue
        if (key := _key(source)) is not None:
            excused.add(key)
            continue
        found.append(f"{source.where}: {failure}\n    {source.sql[:300]}")
    return found, excused


def test_the_package_sql_joins_tenant_tables_on_tenant_id() -> None:
    sources = list(python_statements(ROOT / "src", TENANT_TABLES))
    assert len(sources) > 80  # the scan finds the package's statements
    found, excused = _check(sources)
    assert found == []
    # An exception that no longer applies is removed, so the list stays true.
    assert excused == set(EXCEPTIONS)


async def test_the_plpgsql_functions_join_tenant_tables_on_tenant_id(db: Database) -> None:
    async with db.transaction() as conn:
        functions = (
            await conn.execute(
                text(
                    "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p "
                    "JOIN pg_language l ON l.oid = p.prolang "
                    "WHERE p.pronamespace = 'tenantry'::regnamespace AND l.lanname = 'plpgsql'"
                )
            )
        ).all()
    assert {"claim_workflows", "renew_workflow_leases"} <= {f.proname for f in functions}
    sources = [
        s
        for name, definition in functions
        for s in plpgsql_statements(name, definition)
        if "EXECUTE" in s.where or mentions_tenant_table(s.sql, TENANT_TABLES)
    ]
    assert sources
    found, _ = _check(sources)
    assert found == []


@pytest.mark.parametrize(
    ("sql", "untied"),
    [
        (
            "SELECT * FROM tenantry.workflows w JOIN tenantry.workflow_steps s "
            "ON s.workflow_id = w.id",
            [["workflow_steps", "workflows"]],
        ),
        (
            "SELECT * FROM tenantry.sessions s, tenantry.api_keys k WHERE s.id = k.id "
            "OR s.tenant_id = k.tenant_id",
            [["api_keys", "sessions"]],
        ),
        (
            "DELETE FROM tenantry.alert_silences WHERE id IN "
            "(SELECT id FROM tenantry.alert_silences ORDER BY ends_at OFFSET :keep)",
            [["alert_silences", "alert_silences"]],
        ),
        (
            "INSERT INTO tenantry.alert_attempts (tenant_id, outbox_id) "
            "SELECT :t, id FROM tenantry.alert_outbox WHERE id = :id",
            [["alert_attempts", "alert_outbox"]],
        ),
    ],
)
def test_a_join_without_tenant_id_is_caught(sql: str, untied: list[list[str]]) -> None:
    assert problems(sql, TENANT_TABLES) == untied


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM tenantry.workflows w JOIN tenantry.workflow_steps s "
        "ON s.tenant_id = w.tenant_id AND s.workflow_id = w.id",
        "SELECT * FROM tenantry.workflows w JOIN tenantry.workflow_steps s "
        "USING (tenant_id) WHERE s.workflow_id = w.id",
        "SELECT * FROM tenantry.sessions s, tenantry.api_keys k "
        "WHERE s.tenant_id = :t AND k.tenant_id = :t",
        "DELETE FROM tenantry.alert_silences WHERE (tenant_id, id) IN "
        "(SELECT tenant_id, id FROM tenantry.alert_silences ORDER BY ends_at OFFSET :keep)",
        "INSERT INTO tenantry.alert_attempts (tenant_id, outbox_id) "
        "SELECT :t, id FROM tenantry.alert_outbox WHERE tenant_id = :t AND id = :id",
        "SELECT * FROM tenantry.tenants t JOIN tenantry.sessions s ON s.tenant_id = t.id",
    ],
)
def test_a_join_on_tenant_id_passes(sql: str) -> None:
    assert problems(sql, TENANT_TABLES) == []


async def test_the_core_statements_join_tenant_tables_on_tenant_id(
    db: Database, new_tenant: NewTenant
) -> None:
    """The statements built with SQLAlchemy Core (not in the scan above: they exist only when
    built) that join or nest tenant tables, recorded as sent to PostgreSQL and parsed."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        sent.append(_with_values(statement, parameters))

    tenant = await new_tenant()
    event.listen(Engine, "before_cursor_execute", record)
    try:
        with tenant_scope(tenant.id):
            async with db.tenant_transaction() as conn:
                behaviour = BehaviourRepository(conn)
                await behaviour.take_ready(datetime.now(UTC), ready_activities=3, limit=5)
                await behaviour.keep_newest(10)
                await behaviour.model_file(1)
                records = MetadataRepository(conn)
                await records.get("r-1")
                await records.get_many(["r-1", "r-2"])
                await records.page(
                    metadata_type=None, schema_name=None, fields={}, after=None, limit=5
                )
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    statements = [s for s in sent if mentions_tenant_table(s, TENANT_TABLES)]
    assert len(statements) >= 6  # one a call above
    untied = {s: groups for s in statements if (groups := problems(s, TENANT_TABLES))}
    assert untied == {}


def _with_values(statement: str, parameters: Any) -> str:
    """The statement with its text parameters as literals: Core binds the tenant once per use
    (``$1``, ``$2``), and equal values are what ties two uses."""
    values = list(parameters or ())

    def literal(match: re.Match[str]) -> str:
        value = values[int(match.group(1)) - 1]
        return "'" + value.replace("'", "''") + "'" if isinstance(value, str) else match.group(0)

    return re.sub(r"\$(\d+)", literal, statement)

"""Ready for Citus: every table can be placed (tenant tables distributed by tenant_id), doctor
says so, the shipped script is what the schema generates, and each broken rule is caught."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

import tenantry  # noqa: F401 - imports every domain, so the metadata holds every table
from tenantry.config import Settings
from tenantry.db.citus import GLOBAL_TABLES, distribution_script, read_placements
from tenantry.db.doctor import citus_checks, run_doctor
from tenantry.db.engine import Database
from tenantry.db.rls import tenant_tables
from tenantry.db.runtime import DatabaseRuntime
from tests.conftest import ROOT

SCRIPT = ROOT / "deploy" / "citus" / "distribute.sql"


async def test_every_table_of_our_schema_can_be_placed(db: Database) -> None:
    async with db.transaction() as conn:
        placements = await read_placements(conn)
    assert {p.name: p.problems for p in placements if p.problems} == {}
    by_kind = {p.name: p.placement for p in placements}
    assert {n for n, k in by_kind.items() if k == "distributed"} == {
        t.name for t in tenant_tables()
    }
    assert by_kind["tenants"] == "reference"
    assert by_kind["alembic_version"] == "local"
    assert {n for n, k in by_kind.items() if k != "distributed"} == set(GLOBAL_TABLES)


async def test_the_shipped_script_is_what_the_schema_generates(db: Database) -> None:
    async with db.transaction() as conn:
        script = distribution_script(await read_placements(conn))
    assert SCRIPT.read_text() == script, (
        "deploy/citus/distribute.sql is stale: run `tenantry citus-script -o "
        "deploy/citus/distribute.sql` on a migrated database and commit it"
    )
    assert "create_reference_table('tenantry.tenants')" in script
    for table in tenant_tables():
        assert f"create_distributed_table('tenantry.{table.name}', 'tenant_id'" in script
    # Referenced before referencing: Citus needs the target of a foreign key placed first.
    order = [line.split("'")[1] for line in script.splitlines() if line.startswith("SELECT")]
    assert order[0] == "tenantry.tenants"
    assert order.index("tenantry.workflows") < order.index("tenantry.workflow_steps")
    assert order.index("tenantry.metadata_records") < order.index("tenantry.metadata_versions")


async def test_doctor_reports_the_schema_distributable(settings: Settings) -> None:
    checks = {c.name: c for c in await run_doctor(settings)}
    check = checks["citus distribution"]
    assert check.ok, check.detail
    assert f"{len(tenant_tables())} tenant tables distributable" in check.detail


@pytest.fixture
async def probe(runtime: DatabaseRuntime) -> AsyncIterator[tuple[AsyncConnection, str]]:
    """A throwaway schema on the worker's migrated database, in a transaction rolled back."""
    schema = f"citus_probe_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(runtime.admin_url, poolclass=NullPool)
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.execute(text(f'SET search_path = "{schema}"'))
        try:
            yield conn, schema
        finally:
            await conn.rollback()  # the schema and its tables go with it
    await engine.dispose()


PARENT = "CREATE TABLE parent (tenant_id text, id bigint, PRIMARY KEY (tenant_id, id))"
BROKEN = {
    "primary key without tenant_id": (
        ["CREATE TABLE notes (tenant_id text NOT NULL, id bigint PRIMARY KEY)"],
        "notes",
        "the primary key does not include tenant_id",
    ),
    "no primary key": (
        ["CREATE TABLE notes (tenant_id text NOT NULL, body text)"],
        "notes",
        "it has no primary key",
    ),
    "unique constraint without tenant_id": (
        [
            "CREATE TABLE notes (tenant_id text, id bigint, code text, "
            "PRIMARY KEY (tenant_id, id), CONSTRAINT uq_code UNIQUE (code))"
        ],
        "notes",
        "unique constraint uq_code does not include tenant_id",
    ),
    "unique index without tenant_id": (
        [
            "CREATE TABLE notes (tenant_id text, id bigint, code text, "
            "PRIMARY KEY (tenant_id, id))",
            "CREATE UNIQUE INDEX ix_code ON notes (lower(code))",
        ],
        "notes",
        "unique index ix_code does not include tenant_id",
    ),
    "foreign key without tenant_id": (
        [
            PARENT,
            "CREATE TABLE notes (tenant_id text, id bigint, owner text, parent_id bigint, "
            "PRIMARY KEY (tenant_id, id), CONSTRAINT fk_parent FOREIGN KEY (owner, parent_id) "
            "REFERENCES parent (tenant_id, id))",
        ],
        "notes",
        "foreign key fk_parent to parent: does not map tenant_id to tenant_id",
    ),
    "global table not classified": (
        ["CREATE TABLE settings_everywhere (id int PRIMARY KEY, value text)"],
        "settings_everywhere",
        "no tenant_id and not classified",
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=str)
async def test_a_table_that_breaks_a_rule_is_named_with_the_reason(
    probe: tuple[AsyncConnection, str], case: str
) -> None:
    conn, schema = probe
    statements, table, reason = BROKEN[case]
    for statement in statements:
        await conn.execute(text(statement))
    placements = await read_placements(conn, schema)
    problems = {p.name: p.problems for p in placements if p.problems}
    assert list(problems) == [table]
    assert any(reason in problem for problem in problems[table]), problems
    (check,) = citus_checks(placements)
    assert not check.ok
    assert check.detail.startswith(f"{table}: ")
    assert reason in check.detail
    if case == "global table not classified":
        assert f"NOT PLACED (classify them first): {table}" in distribution_script(placements)


async def test_the_rules_accept_what_citus_accepts(probe: tuple[AsyncConnection, str]) -> None:
    """The same shapes done right: the check is not simply failing everything in a schema."""
    conn, schema = probe
    await conn.execute(text(PARENT))
    await conn.execute(
        text(
            "CREATE TABLE notes (tenant_id text, id bigint, code text, parent_id bigint, "
            "PRIMARY KEY (tenant_id, id), UNIQUE (code, tenant_id), "
            "FOREIGN KEY (tenant_id, parent_id) REFERENCES parent (tenant_id, id))"
        )
    )
    await conn.execute(text("CREATE UNIQUE INDEX ix_code ON notes (tenant_id, lower(code))"))
    placements = await read_placements(conn, schema)
    assert {p.name: (p.placement, p.problems) for p in placements} == {
        "notes": ("distributed", []),
        "parent": ("distributed", []),
    }
    script = distribution_script(placements, schema)
    assert script.index(f"'{schema}.parent'") < script.index(f"'{schema}.notes'")

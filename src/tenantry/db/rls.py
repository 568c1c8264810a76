"""Tenant-owned tables: the declaration helper and the row-level security DDL.

:func:`tenant_table` makes DESIGN.md's invariants part of the declaration: ``tenant_id`` is the
first column and leads the primary key, references ``tenants.id``, and the table is marked so that
:func:`rls_statements` (run by the migration that creates it) enables and forces RLS with one
policy for every command, ``USING`` and ``WITH CHECK`` on the transaction's tenant.
The isolation suite finds tables by that mark and by a ``tenant_id`` column in the catalog.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, ForeignKey, ForeignKeyConstraint, Table, Text
from sqlalchemy.sql.schema import SchemaItem

from tenantry.db.metadata import SCHEMA, metadata

__all__ = [
    "POLICY_NAME",
    "TENANT_EXPRESSION",
    "TENANT_SETTING",
    "create_tenant_table",
    "is_tenant_table",
    "rls_statements",
    "tenant_table",
    "tenant_tables",
]

#: The transaction-local setting that carries the tenant (``set_config(..., true)``).
TENANT_SETTING = "tenantry.tenant_id"
#: The policy's predicate. ``(select ...)`` makes PostgreSQL evaluate the setting once per query
#: (an InitPlan), not once per row. With no tenant set, it is NULL or '' and matches no row.
TENANT_EXPRESSION = f"tenant_id = (select current_setting('{TENANT_SETTING}', true))"
POLICY_NAME = "tenant_isolation"


def tenant_table(name: str, *items: SchemaItem, **kwargs: Any) -> Table:
    """Declare a tenant-owned table in tenantry's metadata.

    ``items`` are the table's other columns and constraints; mark the columns of the natural key
    ``primary_key=True`` and they follow ``tenant_id`` in the primary key. Unique constraints and
    foreign keys must list ``tenant_id`` as well (the isolation suite checks it).
    """
    tenant_id = Column(
        "tenant_id",
        Text,
        ForeignKey(f"{SCHEMA}.tenants.id", ondelete="CASCADE"),
        primary_key=True,
        nullable=False,
    )
    info = dict(kwargs.pop("info", {}))
    info["tenant_owned"] = True
    return Table(name, metadata, tenant_id, *items, info=info, **kwargs)


def is_tenant_table(table: Table) -> bool:
    return bool(table.info.get("tenant_owned"))


def tenant_tables() -> list[Table]:
    """Every tenant-owned table declared so far, in dependency order."""
    return [t for t in metadata.sorted_tables if is_tenant_table(t)]


def rls_statements(table_name: str, schema: str = SCHEMA) -> list[str]:
    """The DDL that puts ``schema.table_name`` behind row-level security.

    Run it (``op.execute``) right after creating a tenant table in a migration. ``FORCE`` makes
    the policy bind the owner too; ``FOR ALL`` with ``USING`` and ``WITH CHECK`` covers select,
    insert, update and delete, and forbids moving a row to another tenant.
    """
    qualified = f'"{schema}"."{table_name}"'
    return [
        f"ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {qualified} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {POLICY_NAME} ON {qualified} AS PERMISSIVE FOR ALL TO PUBLIC "
        f"USING ({TENANT_EXPRESSION}) WITH CHECK ({TENANT_EXPRESSION})",
    ]


def create_tenant_table(name: str, *items: SchemaItem, schema: str = SCHEMA) -> None:
    """In a migration: create a tenant-owned table (``tenant_id`` first, referencing
    ``tenants.id``; list it first in the primary key among ``items``) and put it behind RLS."""
    from alembic import op  # noqa: PLC0415 - only valid while a migration runs

    op.create_table(
        name,
        Column("tenant_id", Text, nullable=False),
        *items,
        ForeignKeyConstraint(
            ["tenant_id"],
            [f"{schema}.tenants.id"],
            ondelete="CASCADE",
            name=op.f(f"fk_{name}_tenant_id_tenants"),
        ),
        schema=schema,
    )
    for statement in rls_statements(name, schema):
        op.execute(statement)

"""Ready for Citus: can every table be placed, tenant tables distributed by ``tenant_id``?

Citus cannot be installed here, so ``tenantry doctor`` proves the schema would distribute
instead, from the catalog, with the rules Citus enforces when ``create_distributed_table`` runs:

- a tenant table (any table with a ``tenant_id`` column, found as the isolation suite finds
  them: :func:`tenantry.db.inspect.read_tenant_tables`) is distributed by ``tenant_id``; its
  primary key, every unique constraint or index and every exclusion constraint include it;
- a foreign key between two distributed tables maps ``tenant_id`` to ``tenant_id`` (the rows
  it joins are on the same shard); one to a reference table is fine; one to a local table is not;
- every other table is classified in :data:`GLOBAL_TABLES` as a reference table (copied to
  every node) or a local one (the coordinator's), with the reason. An unclassified one fails.

:func:`distribution_script` writes the ``create_reference_table`` / ``create_distributed_table``
calls in dependency order, every tenant table colocated with the first; the shipped
``deploy/citus/distribute.sql`` is its output, and a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.db.inspect import read_tenant_tables
from tenantry.db.metadata import SCHEMA

__all__ = [
    "GLOBAL_TABLES",
    "Placement",
    "TablePlacement",
    "distribution_script",
    "read_placements",
]

Placement = Literal["distributed", "reference", "local"]
DISTRIBUTION_COLUMN = "tenant_id"

#: The tables that are not per-tenant, each with where it goes under Citus and why.
GLOBAL_TABLES: dict[str, tuple[Placement, str]] = {
    "tenants": (
        "reference",
        "the tenant registry: every tenant table's tenant_id references it, and a foreign key "
        "from a distributed table must point at a reference table; small, read on every request",
    ),
    "alembic_version": (
        "local",
        "the migrations' bookkeeping, read and written only by `tenantry migrate` on the "
        "coordinator",
    ),
}


@dataclass(slots=True)
class TablePlacement:
    name: str
    placement: Placement | None
    #: Why the table goes there (for a table that is not per-tenant, from GLOBAL_TABLES).
    reason: str
    #: What would make Citus refuse it; empty when it can be placed.
    problems: list[str] = field(default_factory=list)
    #: The tables its foreign keys point at (placed before it in the script).
    references: set[str] = field(default_factory=set)


_ALL_TABLES = text(
    """
    select c.relname
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = :schema and c.relkind in ('r', 'p') and not c.relispartition
    order by c.relname
    """
)
_FOREIGN_KEYS = text(
    """
    select c.relname, con.conname, f.relname as target, fn.nspname as target_schema,
           array(select a.attname::text
                   from unnest(con.conkey) with ordinality as k(attnum, ord)
                   join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum
                  order by k.ord) as cols,
           array(select a.attname::text
                   from unnest(con.confkey) with ordinality as k(attnum, ord)
                   join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.attnum
                  order by k.ord) as target_cols
    from pg_constraint con
    join pg_class c on c.oid = con.conrelid
    join pg_namespace n on n.oid = c.relnamespace
    join pg_class f on f.oid = con.confrelid
    join pg_namespace fn on fn.oid = f.relnamespace
    where n.nspname = :schema and con.contype = 'f'
    order by c.relname, con.conname
    """
)


async def read_placements(conn: AsyncConnection, schema: str = SCHEMA) -> list[TablePlacement]:
    """Every table of ``schema``, where Citus would put it and what would stop it."""
    tenant_facts = {t.name: t for t in await read_tenant_tables(conn, schema)}
    placements: dict[str, TablePlacement] = {}
    for name in (row.relname for row in await conn.execute(_ALL_TABLES, {"schema": schema})):
        facts = tenant_facts.get(name)
        if facts is not None:
            problems = [] if facts.has_primary_key else ["it has no primary key"]
            if facts.has_primary_key and not facts.primary_key_has_tenant:
                problems.append("the primary key does not include tenant_id")
            problems += [
                f"{key} does not include tenant_id"
                for key in facts.keys_without_tenant
                if not key.startswith("foreign key")  # judged below, with their targets
            ]
            placements[name] = TablePlacement(
                name, "distributed", "per-tenant: has tenant_id", problems
            )
        elif name in GLOBAL_TABLES:
            placement, reason = GLOBAL_TABLES[name]
            placements[name] = TablePlacement(name, placement, reason)
        else:
            placements[name] = TablePlacement(
                name,
                None,
                "not per-tenant",
                [
                    "no tenant_id and not classified: add tenant_id, or classify it as a "
                    "reference or local table in tenantry.db.citus.GLOBAL_TABLES with the reason"
                ],
            )
    for row in await conn.execute(_FOREIGN_KEYS, {"schema": schema}):
        source = placements.get(row.relname)
        if source is None:
            continue
        target = placements.get(row.target) if row.target_schema == schema else None
        source.references.add(row.target)
        problem = _foreign_key_problem(source, target, list(row.cols), list(row.target_cols))
        if problem:
            source.problems.append(f"foreign key {row.conname} to {row.target}: {problem}")
    return sorted(placements.values(), key=lambda p: p.name)


def _foreign_key_problem(
    source: TablePlacement, target: TablePlacement | None, cols: list[str], target_cols: list[str]
) -> str | None:
    if target is None:
        return "its table is outside the schema, so it has no placement"
    allowed = {
        "reference": {"reference"},
        "local": {"reference", "local"},
        "distributed": {"reference", "distributed"},
    }
    if source.placement is None or target.placement is None:
        return None  # reported as unclassified already
    if target.placement not in allowed[source.placement]:
        return f"a {source.placement} table cannot reference a {target.placement} one"
    pairs = set(zip(cols, target_cols, strict=True))
    if (
        target.placement == "distributed"
        and (DISTRIBUTION_COLUMN, DISTRIBUTION_COLUMN) not in pairs
    ):
        return (
            "does not map tenant_id to tenant_id (a foreign key between distributed tables "
            "must include the distribution column)"
        )
    return None


def distribution_script(placements: list[TablePlacement], schema: str = SCHEMA) -> str:
    """The SQL that places every table on a Citus cluster, referenced tables first."""
    ordered = _dependency_order(placements)
    distributed = [p for p in ordered if p.placement == "distributed"]
    lines = [
        "-- Places tenantry's tables on a Citus cluster: run once on the coordinator, as the",
        "-- tables' owner, after `tenantry migrate` and before the service starts.",
        "-- Generated by `tenantry citus-script`; tests/db/test_citus.py fails when it differs",
        "-- from what the current schema generates. Regenerate it, never edit it by hand.",
        "",
    ]
    for p in ordered:
        if p.placement == "local":
            lines += [f"-- {schema}.{p.name}: local ({_one_line(p.reason)})", ""]
    for p in ordered:
        if p.placement == "reference":
            lines += [
                f"-- {_one_line(p.reason)}",
                f"SELECT create_reference_table('{schema}.{p.name}');",
                "",
            ]
    if distributed:
        first = distributed[0].name
        lines.append(f"-- Per-tenant: distributed by {DISTRIBUTION_COLUMN}, all colocated.")
        for p in distributed:
            colocate = "default" if p.name == first else f"{schema}.{first}"
            lines.append(
                f"SELECT create_distributed_table('{schema}.{p.name}', "
                f"'{DISTRIBUTION_COLUMN}', colocate_with => '{colocate}');"
            )
    unplaced = [p.name for p in ordered if p.placement is None]
    if unplaced:
        lines += ["", f"-- NOT PLACED (classify them first): {', '.join(unplaced)}"]
    return "\n".join(lines) + "\n"


def _one_line(reason: str) -> str:
    return " ".join(reason.split())


def _dependency_order(placements: list[TablePlacement]) -> list[TablePlacement]:
    """Referenced tables before the tables that reference them; by name otherwise."""
    by_name = {p.name: p for p in placements}
    done: list[TablePlacement] = []
    seen: set[str] = set()

    def visit(p: TablePlacement, path: frozenset[str]) -> None:
        if p.name in seen or p.name in path:
            return
        for target in sorted(p.references):
            if target in by_name and target != p.name:
                visit(by_name[target], path | {p.name})
        seen.add(p.name)
        done.append(p)

    for p in sorted(placements, key=lambda p: p.name):
        visit(p, frozenset())
    return done

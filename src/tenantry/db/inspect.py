"""Read the catalog: which tables are tenant-owned and whether each keeps the invariants.

``tenantry doctor`` and the isolation suite both use these, so what the suite proves and what an
operator checks in production are the same queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.db.metadata import SCHEMA
from tenantry.db.rls import TENANT_SETTING

__all__ = ["RoleFacts", "TableFacts", "read_role", "read_tenant_tables"]


@dataclass(slots=True)
class TableFacts:
    name: str
    rls_enabled: bool
    rls_forced: bool
    #: ``(command, using, with_check)`` of every policy on the table.
    policies: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    #: Unique constraints, unique indexes and foreign keys that leave ``tenant_id`` out.
    keys_without_tenant: list[str] = field(default_factory=list)
    primary_key_leads_with_tenant: bool = False
    #: The primary key's columns in order; empty when the table has none.
    primary_key: list[str] = field(default_factory=list)

    @property
    def has_primary_key(self) -> bool:
        return bool(self.primary_key)

    @property
    def primary_key_has_tenant(self) -> bool:
        return "tenant_id" in self.primary_key

    def problems(self) -> list[str]:
        found = []
        if not self.rls_enabled:
            found.append("row-level security is not enabled")
        if not self.rls_forced:
            found.append("row-level security is not forced")
        all_commands = [p for p in self.policies if p[0] == "*"]
        good = [
            p
            for p in all_commands
            if p[1] is not None
            and p[2] is not None
            and TENANT_SETTING in p[1]
            and TENANT_SETTING in p[2]
            and "tenant_id" in p[1]
            and "tenant_id" in p[2]
        ]
        if not good:
            found.append("no FOR ALL policy with USING and WITH CHECK on the tenant setting")
        if len(good) != len(self.policies):
            found.append(f"{len(self.policies) - len(good)} other policy(ies) widen access")
        if not self.primary_key_leads_with_tenant:
            found.append("the primary key does not start with tenant_id")
        found.extend(f"{key} does not include tenant_id" for key in self.keys_without_tenant)
        return found


@dataclass(slots=True)
class RoleFacts:
    name: str
    exists: bool
    superuser: bool = False
    bypass_rls: bool = False
    owned_relations: int = 0
    member_of: list[str] = field(default_factory=list)

    def problems(self, owner: str) -> list[str]:
        if not self.exists:
            return [f"role {self.name!r} does not exist"]
        found = []
        if self.superuser:
            found.append("is a superuser")
        if self.bypass_rls:
            found.append("has BYPASSRLS")
        if self.owned_relations:
            found.append(f"owns {self.owned_relations} relation(s)")
        if owner in self.member_of:
            found.append(f"is a member of the owner role {owner!r}")
        return found


_TABLES = text(
    """
    select c.relname, c.relrowsecurity, c.relforcerowsecurity
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = :schema and c.relkind in ('r', 'p')
      and exists (select 1 from pg_attribute a
                  where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
    order by c.relname
    """
)
_POLICIES = text(
    "select tablename, cmd, qual, with_check from pg_policies where schemaname = :schema"
)
_CONSTRAINTS = text(
    """
    select c.relname, con.conname, con.contype::text as contype,
           (select array_agg(a.attname::text order by k.ord)
              from unnest(con.conkey) with ordinality as k(attnum, ord)
              join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum) as cols
    from pg_constraint con
    join pg_class c on c.oid = con.conrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = :schema and con.contype in ('p', 'u', 'f', 'x')
    union all
    select c.relname, i.relname, 'i'::text,
           (select array_agg(a.attname::text)
              from pg_attribute a
              where a.attrelid = c.oid and a.attnum = any(ix.indkey::int2[]))
    from pg_index ix
    join pg_class c on c.oid = ix.indrelid
    join pg_class i on i.oid = ix.indexrelid
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = :schema and ix.indisunique and not ix.indisprimary
      and not exists (select 1 from pg_constraint k where k.conindid = ix.indexrelid)
    """
)


async def read_tenant_tables(conn: AsyncConnection, schema: str = SCHEMA) -> list[TableFacts]:
    """Every table of ``schema`` with a ``tenant_id`` column, with its RLS and key facts."""
    tables = {
        row.relname: TableFacts(row.relname, row.relrowsecurity, row.relforcerowsecurity)
        for row in await conn.execute(_TABLES, {"schema": schema})
    }
    for row in await conn.execute(_POLICIES, {"schema": schema}):
        if (facts := tables.get(row.tablename)) is not None:
            facts.policies.append((_cmd(row.cmd), row.qual, row.with_check))
    for row in await conn.execute(_CONSTRAINTS, {"schema": schema}):
        if (facts := tables.get(row.relname)) is None:
            continue
        columns = list(row.cols or [])
        if row.contype == "p":
            facts.primary_key = columns
            facts.primary_key_leads_with_tenant = bool(columns) and columns[0] == "tenant_id"
        elif "tenant_id" not in columns:
            kind = {"u": "unique constraint", "f": "foreign key", "x": "exclusion constraint"}
            facts.keys_without_tenant.append(
                f"{kind.get(row.contype, 'unique index')} {row.conname}"
            )
    return list(tables.values())


def _cmd(cmd: str) -> str:
    return "*" if cmd == "ALL" else cmd


async def read_role(conn: AsyncConnection, role: str) -> RoleFacts:
    row = (
        await conn.execute(
            text(
                """
                select r.rolsuper, r.rolbypassrls,
                       (select count(*) from pg_class c where c.relowner = r.oid) as owned,
                       array(select g.rolname::text from pg_roles g
                             where g.oid <> r.oid and pg_has_role(r.oid, g.oid, 'MEMBER')) as groups
                from pg_roles r where r.rolname = :role
                """
            ),
            {"role": role},
        )
    ).first()
    if row is None:
        return RoleFacts(role, exists=False)
    return RoleFacts(role, True, row.rolsuper, row.rolbypassrls, int(row.owned), list(row.groups))

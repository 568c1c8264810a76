"""``tenantry doctor``: is this deployment keeping the tenant boundary?

Checks the configuration, the database (as the admin user and as the application role), both
roles, row-level security on every tenant table, that every table could be placed on a Citus
cluster (:mod:`tenantry.db.citus`), and Redis when one is configured (with
``REDIS_CLUSTER_ENABLED``, that the cluster reached through it is whole: ``cluster_state:ok``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tenantry.config import Settings, load_settings
from tenantry.db.citus import TablePlacement, read_placements
from tenantry.db.inspect import read_role, read_tenant_tables
from tenantry.db.migrate import schema_position
from tenantry.db.rls import tenant_tables
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import TenantryError

__all__ = ["Check", "citus_checks", "probe_bypass", "run_doctor"]


@dataclass(slots=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


async def run_doctor(settings: Settings | None = None) -> list[Check]:
    """Run every check; never raises for a failed check, it reports it."""
    try:
        settings = settings or load_settings()
    except TenantryError as exc:
        return [Check("config", False, exc.detail)]
    mode = "embedded" if settings.embedded else "server"
    checks = [Check("config", True, f"valid ({mode} mode, data dir {settings.data_dir})")]
    runtime = DatabaseRuntime(settings)
    try:
        await runtime.start()
        checks.extend(await _database_checks(runtime))
    except (TenantryError, OSError) as exc:
        checks.append(Check("database", False, str(exc)))
    finally:
        await runtime.stop()
    if settings.redis_url is not None:
        checks.append(await _redis_check(settings.redis_url, settings.redis_cluster_enabled))
    return checks


async def _database_checks(runtime: DatabaseRuntime) -> list[Check]:
    settings = runtime.settings
    checks: list[Check] = []
    current, head = await runtime.revision_status()
    position = schema_position(current)
    advice = {
        "head": "",
        "ahead": ": a newer release's schema",
        "behind": ": run `tenantry migrate`",
    }
    checks.append(
        Check(
            "migrations",
            position != "behind",
            f"database at {current}, code at {head}{advice[position]}",
        )
    )
    admin = create_async_engine(runtime.admin_url, poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            for role in (settings.app_role,):
                role_facts = await read_role(conn, role)
                problems = role_facts.problems(settings.owner_role)
                checks.append(
                    Check(
                        f"role {role}",
                        not problems,
                        "cannot bypass row-level security: no superuser, no BYPASSRLS, owns "
                        "nothing, not a member of the owner role"
                        if not problems
                        else "; ".join(problems),
                    )
                )
            tables = await read_tenant_tables(conn)
            placements = await read_placements(conn)
    finally:
        await admin.dispose()
    declared = {t.name for t in tenant_tables()}
    found = {t.name for t in tables}
    for missing in sorted(declared - found):
        checks.append(Check(f"table {missing}", False, "declared in code, missing in the database"))
    for facts in tables:
        problems = facts.problems()
        checks.append(
            Check(
                f"table {facts.name}",
                not problems,
                "RLS enabled and forced; policy USING + WITH CHECK on tenant_id; keys include "
                "tenant_id"
                if not problems
                else "; ".join(problems),
            )
        )
    checks.extend(await _bypass_check(runtime, [t.name for t in tables]))
    checks.extend(citus_checks(placements))
    return checks


def citus_checks(placements: list[TablePlacement]) -> list[Check]:
    """One check: can every table be placed on Citus; the failures name table and reason."""
    failed = [p for p in placements if p.problems]
    if failed:
        detail = "; ".join(f"{p.name}: {', '.join(p.problems)}" for p in failed)
        return [Check("citus distribution", False, detail)]
    counts = {
        kind: sorted(p.name for p in placements if p.placement == kind)
        for kind in ("distributed", "reference", "local")
    }
    return [
        Check(
            "citus distribution",
            True,
            f"{len(counts['distributed'])} tenant tables distributable by tenant_id (keys and "
            "foreign keys include it); reference: "
            f"{', '.join(counts['reference']) or '-'}; local: {', '.join(counts['local']) or '-'}",
        )
    ]


#: What the application role must not be able to do; each runs in a savepoint and must fail.
def _attempts(owner: str, tables: list[str]) -> list[tuple[str, str]]:
    attempts = [
        (f"SET ROLE {owner}", f'SET ROLE "{owner}"'),
        ("SET SESSION AUTHORIZATION", f'SET SESSION AUTHORIZATION "{owner}"'),
        ("SET row_security = off", "SET row_security = off"),
    ]
    for table in tables:
        qualified = f'"tenantry"."{table}"'
        attempts += [
            (f"disable RLS on {table}", f"ALTER TABLE {qualified} DISABLE ROW LEVEL SECURITY"),
            (
                f"alter policy on {table}",
                f"ALTER POLICY tenant_isolation ON {qualified} USING (true)",
            ),
        ]
    return attempts


async def probe_bypass(app_url: URL, owner: str, tables: list[str]) -> list[str]:
    """Connect as the application role and try to get around the policies.

    Returns the attempts that succeeded: an empty list is the only good answer.
    """
    app = create_async_engine(app_url, poolclass=NullPool)
    succeeded: list[str] = []
    try:
        async with app.connect() as conn:
            for label, statement in _attempts(owner, tables):
                savepoint = await conn.begin_nested()
                try:
                    await conn.execute(text(statement))
                    if statement == "SET row_security = off":
                        # Allowed to set, but then any query on an RLS table must error out.
                        for table in tables:
                            await conn.execute(text(f'select 1 from "tenantry"."{table}" limit 1'))
                    succeeded.append(label)
                except DBAPIError:
                    pass  # refused, as it must be
                finally:
                    await savepoint.rollback()
            await conn.rollback()
    finally:
        await app.dispose()
    return succeeded


async def _bypass_check(runtime: DatabaseRuntime, tables: list[str]) -> list[Check]:
    name = "app role cannot bypass RLS"
    try:
        succeeded = await probe_bypass(runtime.app_url, runtime.settings.owner_role, tables)
    except (OSError, DBAPIError) as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        return [Check(name, False, f"cannot connect as the application role: {reason}")]
    if succeeded:
        return [Check(name, False, f"these should have failed: {', '.join(succeeded)}")]
    return [
        Check(
            name,
            True,
            f"as {runtime.settings.app_role}: refused SET ROLE, SET SESSION AUTHORIZATION, "
            "row_security off, ALTER TABLE/POLICY on every tenant table",
        )
    ]


async def _redis_check(url: str, cluster: bool = False) -> Check:
    if cluster:
        return await _redis_cluster_check(url)
    from redis.asyncio import Redis  # noqa: PLC0415 - only when Redis is configured

    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
        return Check("redis", True, "answers PING")
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return Check("redis", False, f"unreachable: {exc}")
    finally:
        await client.aclose()


async def _redis_cluster_check(url: str) -> Check:
    from redis.asyncio import RedisCluster  # noqa: PLC0415 - only when Redis is configured

    try:
        client = RedisCluster.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return Check("redis", False, f"not a cluster: {exc}")
    try:
        info = await client.cluster_info()
        masters = len(client.get_primaries())
        state = info.get("cluster_state")
        detail = f"a cluster of {masters} masters, cluster_state:{state}"
        return Check("redis", state == "ok", detail)
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return Check("redis", False, f"unreachable: {exc}")
    finally:
        await client.aclose()

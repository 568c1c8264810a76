"""The ``tenantry`` command: serve, worker, migrate, tenants, doctor, citus-script."""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from tenantry.cli.audit import audit_app
from tenantry.cli.keys import keys_app
from tenantry.cli.lifecycle import tenants_export
from tenantry.cli.metadata import metadata_app
from tenantry.cli.support import held_embedded_database, migrated_database, run_command
from tenantry.cli.worker import worker
from tenantry.config import Settings, load_settings
from tenantry.db.citus import distribution_script, read_placements
from tenantry.db.doctor import run_doctor
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import ConfigError, TenantryError
from tenantry.lifecycle.erasure import ErasureReport
from tenantry.lifecycle.manager import LifecycleManager
from tenantry.logging import configure_logging
from tenantry.tenants.manager import TenantRegistry
from tenantry.tenants.schemas import Tenant, TenantStatus, TenantTier

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["app", "main", "worker_app"]

app = typer.Typer(
    help="tenantry: the tenant boundary of a multi-tenant service.", no_args_is_help=True
)
tenants_app = typer.Typer(
    help="Create, list, show and export tenants, change their status, erase deleted ones.",
    no_args_is_help=True,
)
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")
app.add_typer(metadata_app, name="metadata")
app.add_typer(audit_app, name="audit")
app.command("worker")(worker)
tenants_app.command("export")(tenants_export)
console = Console()
_T = TypeVar("_T")
#: The audit log's actor for changes made with ``tenantry tenants``.
_ACTOR = "cli:tenantry tenants"


def _settings() -> Settings:
    return load_settings()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Overrides TENANTRY_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Overrides TENANTRY_PORT")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Overrides TENANTRY_WORKERS")
    ] = None,
) -> None:
    """Run the HTTP service (embedded PostgreSQL unless TENANTRY_DATABASE_URL is set)."""
    from tenantry.api.app import create_app, resolve_api_token  # noqa: PLC0415
    from tenantry.api.multiprocess import prepare  # noqa: PLC0415

    try:
        given = (("host", host), ("port", port), ("workers", workers))
        settings = load_settings(**{k: v for k, v in given if v is not None})
        resolve_api_token(settings)  # made once, before any worker reads it
    except ConfigError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level)
    mode = "embedded PostgreSQL in " + str(settings.data_dir) if settings.embedded else "server"
    token_note = "TENANTRY_API_TOKEN" if settings.api_token else f"{settings.data_dir}/api-token"
    typer.echo(f"tenantry on http://{settings.host}:{settings.port} ({mode})", err=True)
    typer.echo(f"API docs: http://{settings.host}:{settings.port}/docs", err=True)
    typer.echo(f"dashboard: http://{settings.host}:{settings.port}/dashboard", err=True)
    typer.echo(f"service token: {token_note}", err=True)
    if prepare(settings, settings.workers) is None:
        _run(create_app(settings), settings)
        return
    # Each worker process imports the app anew, with the multiprocess directory set (settings
    # from the environment: --host and --port are the server's, not the app's).
    typer.echo(f"{settings.workers} worker processes", err=True)
    try:
        with held_embedded_database(settings) if settings.workers > 1 else nullcontext():
            _run("tenantry.cli.main:worker_app", settings)
    except TenantryError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


def _run(app_or_factory: FastAPI | str, settings: Settings) -> None:
    import uvicorn  # noqa: PLC0415 - only the serve command needs the server

    uvicorn.run(
        app_or_factory,
        factory=isinstance(app_or_factory, str),
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )


def worker_app() -> FastAPI:
    """A worker's app (``tenantry serve --workers N``): settings from the environment."""
    from tenantry.api.app import create_app  # noqa: PLC0415

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


@app.command()
def migrate() -> None:
    """Create the roles and schema, and apply every migration."""

    async def work() -> str | None:
        runtime = DatabaseRuntime(_settings())
        await runtime.start()
        try:
            return await runtime.migrate()
        finally:
            await runtime.stop()

    revision = run_command(work)
    typer.echo(f"database at revision {revision}")


@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Check configuration, database, roles, RLS on every tenant table, Citus readiness,
    Redis."""
    checks = asyncio.run(run_doctor())
    if as_json:
        typer.echo(
            json.dumps(
                {"ok": all(c.ok for c in checks), "checks": [c.as_dict() for c in checks]}, indent=2
            )
        )
    else:
        table = Table("check", "", "detail")
        for check in checks:
            table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]FAIL[/]", check.detail)
        console.print(table)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@app.command("citus-script")
def citus_script(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout")
    ] = None,
) -> None:
    """Print the create_distributed_table / create_reference_table calls for every table
    (deploy/citus/distribute.sql is this command's output); exit 1 if a table cannot be placed."""

    async def work() -> tuple[str, list[str]]:
        async with migrated_database(_settings()) as db, db.transaction() as conn:
            placements = await read_placements(conn)
        problems = [f"{p.name}: {', '.join(p.problems)}" for p in placements if p.problems]
        return distribution_script(placements), problems

    script, problems = run_command(work)
    if output is None:
        typer.echo(script, nl=False)
    else:
        output.write_text(script)
    for problem in problems:
        typer.echo(f"cannot place {problem}", err=True)
    if problems:
        raise typer.Exit(1)


def _print_tenants(tenants: list[Tenant]) -> None:
    table = Table("id", "display name", "tier", "status", "created")
    for t in tenants:
        table.add_row(
            t.id,
            t.display_name,
            t.tier.value,
            t.status.value,
            t.created_at.isoformat(timespec="seconds"),
        )
    console.print(table)


@tenants_app.command("create")
def tenants_create(
    tenant_id: Annotated[str, typer.Argument(help="3-63 characters of a-z, 0-9, '_' and '-'")],
    name: Annotated[str, typer.Option("--name", help="Display name")],
    tier: Annotated[TenantTier, typer.Option(help="Tier")] = TenantTier.FREE,
) -> None:
    """Register a tenant."""

    async def work() -> Tenant:
        async with migrated_database(_settings()) as db:
            return await TenantRegistry(db).create(tenant_id, name, tier=tier, actor=_ACTOR)

    _print_tenants([run_command(work)])


@tenants_app.command("list")
def tenants_list(
    status: Annotated[TenantStatus | None, typer.Option(help="Only this status")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    """List tenants."""

    async def work() -> list[Tenant]:
        async with migrated_database(_settings()) as db:
            return await TenantRegistry(db).list(status=status, limit=limit)

    _print_tenants(run_command(work))


@tenants_app.command("show")
def tenants_show(tenant_id: str) -> None:
    """Show one tenant as JSON."""

    async def work() -> Tenant:
        async with migrated_database(_settings()) as db:
            return await TenantRegistry(db).get(tenant_id)

    typer.echo(run_command(work).model_dump_json(indent=2))


@tenants_app.command("status")
def tenants_status(
    tenant_id: str,
    status: Annotated[TenantStatus, typer.Argument(help="The new status")],
) -> None:
    """Change a tenant's status (only the changes the lifecycle allows; deleted is final)."""

    async def work() -> Tenant:
        async with migrated_database(_settings()) as db:
            return await TenantRegistry(db).update_status(tenant_id, status, actor=_ACTOR)

    _print_tenants([run_command(work)])


@tenants_app.command("erase")
def tenants_erase(
    tenant_id: str,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: the tenant's data and keys are destroyed")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Erase a deleted tenant: its rows, its keys (crypto-shredding); its audit tree is kept as
    hashes. Prints the report that proves it (exit 1 if anything of it is still readable)."""
    if not yes:
        typer.echo(
            f"error: erasing {tenant_id!r} destroys its data and keys for good: pass --yes",
            err=True,
        )
        raise typer.Exit(2)

    async def work() -> ErasureReport:
        async with migrated_database(_settings()) as db:
            return await LifecycleManager(db).erase_tenant(tenant_id, actor=_ACTOR)

    report = run_command(work)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _print_erasure(report)
    if not report.erased:
        raise typer.Exit(1)


def _print_erasure(report: ErasureReport) -> None:
    table = Table("table", "deleted", "left", "kept", title=f"erasure of {report.tenant_id}")
    for row in report.tables:
        left = f"[red]{row.left}[/]" if row.left and row.kept is None else str(row.left)
        table.add_row(row.table, str(row.deleted), left, row.kept or "")
    console.print(table)
    audit, keys = report.audit, report.keys
    verified = "[green]verifies[/]" if audit.verified else "[red]DOES NOT VERIFY[/]"
    console.print(
        f"audit tree: {audit.size} entries, {verified}, "
        f"{audit.payloads_unavailable}/{audit.size} payloads unreadable"
        + (f", newest entry: {audit.probe_error_after}" if audit.probe_seq is not None else "")
    )
    console.print(
        f"keys: {keys.destroyed}/{keys.keys} destroyed ({keys.destroyed_now} now), "
        f"sealing answers {keys.error}"
    )
    console.print(f"report sha256: {report.digest()}")
    done = "[green]erased[/]" if report.erased else "[red]NOT erased[/]"
    console.print(f"{report.tenant_id}: {done} ({report.finished_at.isoformat()})")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)

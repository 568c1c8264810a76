"""``tenantry tenants export``: a tenant's data in an archive sealed for it (GDPR portability)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from tenantry.cli.support import migrated_database, run_command
from tenantry.lifecycle import ExportReport, ExportStep, LifecycleManager

__all__ = ["tenants_export"]

console = Console()
#: The audit log's actor for the exports this command makes.
ACTOR = "cli:tenantry tenants export"


def tenants_export(
    tenant_id: Annotated[str, typer.Argument(help="The tenant id")],
    out: Annotated[Path, typer.Option("--out", help="The archive to write (a new file)")],
) -> None:
    """Export every tenant table of TENANT_ID as JSON lines in a tar sealed for the tenant, with
    a manifest of SHA-256 hashes (see docs/lifecycle.md); recorded in the tenant's audit log."""

    async def work() -> ExportReport:
        async with migrated_database() as database:
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("tables"),
            )
            with Progress(*columns, console=console) as bar:
                task = bar.add_task(f"exporting {tenant_id}", total=None)

                def step(at: ExportStep) -> None:
                    description = f"{at.table}: {at.rows} rows"
                    bar.update(
                        task,
                        total=at.tables_total,
                        completed=at.tables_done,
                        description=description,
                    )

                return await LifecycleManager(database).export_tenant(
                    tenant_id, out, actor=ACTOR, progress=step
                )

    report = run_command(work)
    typer.echo(
        f"exported tenant {report.tenant_id!r}: {len(report.tables)} tables, {report.rows} rows "
        f"to {report.path}"
    )
    typer.echo(f"manifest sha256 {report.manifest_sha256} (export {report.export_id})")

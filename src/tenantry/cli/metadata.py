"""``tenantry metadata``: upgrade stored records to a later version of their schema."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from tenantry.cli.support import migrated_database, run_command
from tenantry.metadata.manager import MetadataManager

__all__ = ["metadata_app"]

metadata_app = typer.Typer(
    help="Metadata records: upgrade them to a later version of their schema.",
    no_args_is_help=True,
)
console = Console()
#: The audit log's actor for the versions this command writes.
ACTOR = "cli:tenantry metadata"


@metadata_app.command("upgrade")
def upgrade(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant id")],
    schema: Annotated[str, typer.Option("--schema", help="The schema's name")],
    to_version: Annotated[
        int | None, typer.Option("--to", min=1, help="The target version (default: the latest)")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, max=1000, help="Records a step")] = 100,
) -> None:
    """Write every record of SCHEMA still behind --to (default: the latest) as a new version of
    its content upgraded (renames by aliases, defaults). Stopped midway, run it again: it goes on
    with the records still behind. A record whose upgraded content does not validate is left as
    it is and listed."""

    async def work() -> tuple[int, list[str]]:
        async with migrated_database() as database:
            manager = MetadataManager(database)
            total = await manager.count_behind(tenant, schema, to_version)
            done, after = 0, None
            failed: list[str] = []
            columns = (TextColumn(f"upgrading {schema}"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns, console=console) as bar:
                task = bar.add_task("upgrade", total=total)
                while True:
                    step = await manager.upgrade_records(
                        tenant, schema, to_version=to_version, batch=batch, after=after, actor=ACTOR
                    )
                    done += step.upgraded
                    failed += step.failed
                    after = step.last
                    bar.update(task, completed=done + len(failed))
                    if not step.more:
                        return done, failed

    done, failed = run_command(work)
    typer.echo(f"upgraded {done} records of schema {schema!r}")
    for record_id in failed:
        typer.echo(f"not upgraded (its content does not validate): {record_id}")
    if failed:
        raise typer.Exit(1)

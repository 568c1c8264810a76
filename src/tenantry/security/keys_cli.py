"""``tenantry keys``: rotate, rewrap and list a tenant's keys (registered in ``tenantry.cli``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from tenantry.cli_support import migrated_database, run_command
from tenantry.security.keyring import KeyInfo, Keyring

__all__ = ["keys_app"]

keys_app = typer.Typer(help="Tenant keys: rotate, rewrap, list.", no_args_is_help=True)
console = Console()
_T = TypeVar("_T")
TenantOption = Annotated[str, typer.Option("--tenant", help="The tenant id")]


def _run(work: Callable[[Keyring], Awaitable[_T]]) -> _T:
    async def with_keyring() -> _T:
        async with migrated_database() as database:
            return await work(Keyring(database))

    return run_command(with_keyring)


@keys_app.command("rotate")
def rotate(
    tenant: TenantOption,
    quantum: Annotated[
        bool | None,
        typer.Option(
            "--quantum/--classic", help="Hybrid X25519+ML-KEM-768 KEK (default: as the last one)"
        ),
    ] = None,
) -> None:
    """New KEK and data key versions for new data; old versions keep decrypting."""
    version = _run(lambda keyring: keyring.rotate(tenant, quantum=quantum))
    typer.echo(f"tenant {tenant}: data key version {version} is current")


@keys_app.command("rewrap")
def rewrap(tenant: TenantOption) -> None:
    """Re-wrap every older data key of the tenant under its newest KEK."""
    with Progress(
        TextColumn("re-wrapping data keys"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        task = bar.add_task("rewrap", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        count = _run(lambda keyring: keyring.rewrap(tenant, progress=progress))
        bar.update(task, completed=count, total=count)
    typer.echo(f"tenant {tenant}: {count} data key(s) re-wrapped under the newest KEK")


@keys_app.command("list")
def list_keys(tenant: TenantOption) -> None:
    """The tenant's key versions, algorithms and states (never key material)."""
    keys: list[KeyInfo] = _run(lambda keyring: keyring.keys(tenant))
    table = Table("purpose", "version", "algorithm", "kek", "created", "state")
    for key in keys:
        state = "destroyed" if key.destroyed_at else "retired" if key.retired_at else "current"
        table.add_row(
            key.purpose,
            str(key.version),
            key.algorithm,
            "-" if key.kek_version is None else str(key.kek_version),
            key.created_at.isoformat(timespec="seconds"),
            state,
        )
    console.print(table)

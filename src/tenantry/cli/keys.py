"""``tenantry keys``: a tenant's keys and level, the root key (registered in ``tenantry.cli``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from tenantry.cli.support import migrated_database, run_command
from tenantry.keys.hierarchy import Progress as ProgressCallback
from tenantry.keys.manager import KeyInfo, RootRotation
from tenantry.security.manager import SecurityManager

__all__ = ["keys_app"]

keys_app = typer.Typer(
    help="Tenant keys (rotate, rewrap, list, level) and the root key (rotate-root, retire-root).",
    no_args_is_help=True,
)
console = Console()
_T = TypeVar("_T")
TenantOption = Annotated[str, typer.Option("--tenant", help="The tenant id")]


#: The audit log's actor for key changes made with this command.
ACTOR = "cli:tenantry keys"


def _run(work: Callable[[SecurityManager], Awaitable[_T]]) -> _T:
    """Run ``work`` with a SecurityManager: every key change is written to the audit log."""

    async def with_security() -> _T:
        async with migrated_database() as database:
            return await work(SecurityManager(database))

    return run_command(with_security)


@contextmanager
def _bar(label: str) -> Iterator[ProgressCallback]:
    """A progress bar; yields the ``progress(done, total)`` callback that moves it."""
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task(label, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress


@keys_app.command("rotate")
def rotate(
    tenant: TenantOption,
    quantum: Annotated[
        bool | None,
        typer.Option(
            "--quantum/--classic",
            help="Hybrid X25519+ML-KEM-768 KEK or not (default: hybrid if the tenant's security "
            "level is quantum or its KEK is hybrid already)",
        ),
    ] = None,
) -> None:
    """New KEK and data key versions for new data; old versions keep decrypting."""
    version = _run(lambda security: security.rotate_keys(tenant, quantum=quantum, actor=ACTOR))
    typer.echo(f"tenant {tenant}: data key version {version} is current")


@keys_app.command("rewrap")
def rewrap(tenant: TenantOption) -> None:
    """Re-wrap every older data key of the tenant under its newest KEK."""
    with _bar("re-wrapping data keys") as progress:
        count = _run(lambda security: security.rewrap_keys(tenant, progress=progress, actor=ACTOR))
    typer.echo(f"tenant {tenant}: {count} data key(s) re-wrapped under the newest KEK")


@keys_app.command("list")
def list_keys(tenant: TenantOption) -> None:
    """The tenant's key versions, algorithms and states (never key material)."""
    keys: list[KeyInfo] = _run(lambda security: security.keyring.keys(tenant))
    table = Table("purpose", "version", "algorithm", "kek", "root", "created", "state")
    for key in keys:
        state = "destroyed" if key.destroyed_at else "retired" if key.retired_at else "current"
        table.add_row(
            key.purpose,
            str(key.version),
            key.algorithm,
            "-" if key.kek_version is None else str(key.kek_version),
            "-" if key.root_key_version is None else str(key.root_key_version),
            key.created_at.isoformat(timespec="seconds"),
            state,
        )
    console.print(table)


@keys_app.command("level")
def level(
    tenant: TenantOption,
    value: Annotated[
        str | None, typer.Argument(help="high, critical or quantum (omit to show the level)")
    ] = None,
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate/--no-rotate",
            help="At quantum, rotate a classic KEK to a hybrid one now (else at the next rotate)",
        ),
    ] = True,
) -> None:
    """Show or set the tenant's security level (quantum: hybrid X25519+ML-KEM-768 KEKs)."""

    async def work(security: SecurityManager) -> str:
        if value is None:
            return (await security.keyring.security_level(tenant)).value
        changed = await security.set_security_level(tenant, value, rotate=rotate, actor=ACTOR)
        return changed.value

    typer.echo(f"tenant {tenant}: security level {_run(work)}")


@keys_app.command("rotate-root")
def rotate_root(
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="No new version: finish re-wrapping KEKs under the newest one"
        ),
    ] = False,
    retire: Annotated[
        bool, typer.Option("--retire", help="Then retire the older root key versions")
    ] = False,
) -> None:
    """A new root key version; every tenant's KEKs re-wrapped under it (old versions stay
    readable until retired)."""

    async def work(security: SecurityManager) -> tuple[RootRotation, tuple[int, ...]]:
        with _bar("re-wrapping tenant KEKs (tenants)") as progress:
            done = await security.rotate_root_key(resume=resume, progress=progress, actor=ACTOR)
        if not retire:
            return done, ()
        with _bar("checking tenants before retiring") as progress:
            return done, await security.retire_root_keys(progress=progress, actor=ACTOR)

    done, retired = _run(work)
    typer.echo(
        f"root key version {done.version} is current: {done.rewrapped} KEK(s) of "
        f"{done.tenants} tenant(s) re-wrapped"
    )
    if retire:
        typer.echo(_retired(retired))


@keys_app.command("retire-root")
def retire_root() -> None:
    """Retire every root key version but the newest; refused while a KEK still uses one."""

    async def work(security: SecurityManager) -> tuple[int, ...]:
        with _bar("checking tenants before retiring") as progress:
            return await security.retire_root_keys(progress=progress, actor=ACTOR)

    typer.echo(_retired(_run(work)))


def _retired(versions: tuple[int, ...]) -> str:
    if not versions:
        return "no older root key version to retire"
    return f"root key version(s) {', '.join(map(str, versions))} retired"

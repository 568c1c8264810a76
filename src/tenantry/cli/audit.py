"""``tenantry audit``: verify an export offline, or a tenant's live log; export; checkpoint."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from tenantry.audit.manager import AuditLog
from tenantry.audit.trail import trail_for
from tenantry.audit.verifier import VerificationReport, verify_export
from tenantry.cli.support import migrated_database, run_command
from tenantry.context import PLATFORM_TENANT

__all__ = ["audit_app"]

audit_app = typer.Typer(
    help="Verify, export and checkpoint the audit log (RFC 9162 Merkle trees).",
    no_args_is_help=True,
)
_T = TypeVar("_T")
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="The tenant whose tree to use")]
KeyOpt = Annotated[
    list[str] | None,
    typer.Option("--key", help="A trusted verifier key (repeatable); default: the export's keys"),
]


async def _with_log(work: Callable[[AuditLog], Awaitable[_T]]) -> _T:
    async with migrated_database() as database:
        # The managers' log: its entries open with the tenants' keys (root key of the environment)
        return await work(trail_for(database).audit_log)


def _report(report: VerificationReport, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        state = "OK" if report.ok else "FAILED"
        typer.echo(
            f"{state}: tenant {report.tenant or '?'}, {report.size} entries "
            f"({report.payloads_unavailable} without payload), "
            f"{report.checkpoints_checked} checkpoints"
        )
        for problem in report.problems:
            where = f"entry {problem.index}" if problem.index is not None else "-"
            typer.echo(f"  [{problem.kind}] {where}: {problem.message}")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("verify")
def verify(
    tenant: TenantOpt = PLATFORM_TENANT,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Verify this export offline")
    ] = None,
    key: KeyOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Check every entry, proof and signature: of an export file (offline), or of a tenant."""
    if file is not None:
        try:
            content = file.read_bytes()
        except OSError as exc:
            typer.echo(f"error: cannot read {file}: {exc}", err=True)
            raise typer.Exit(2) from None
        try:
            data: object = json.loads(content)
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested too deep
            typer.echo(f"error: {file} is not a JSON audit export: {exc}", err=True)
            raise typer.Exit(1) from None
        report = verify_export(data, keys=key or None)
    else:
        trusted = key or None

        async def live(log: AuditLog) -> VerificationReport:
            if trusted is None:
                return await log.verify(tenant)
            return verify_export(await log.export(tenant), keys=trusted)

        report = run_command(lambda: _with_log(live))
    _report(report, as_json)


@audit_app.command("export")
def export(
    tenant: TenantOpt = PLATFORM_TENANT,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write")] = None,
) -> None:
    """Write a tenant's log (entries, checkpoints, proofs, keys) as JSON."""

    async def work(log: AuditLog) -> dict[str, Any]:
        return await log.export(tenant)

    text = json.dumps(run_command(lambda: _with_log(work)), indent=1)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n")


@audit_app.command("checkpoint")
def checkpoint(tenant: TenantOpt = PLATFORM_TENANT) -> None:
    """Sign and store a checkpoint of a tenant's tree; print its signed note."""

    async def work(log: AuditLog) -> str:
        return (await log.checkpoint(tenant)).note

    typer.echo(run_command(lambda: _with_log(work)), nl=False)


@audit_app.command("keys")
def keys() -> None:
    """Print the verifier keys of the checkpoint signer (for ``verify --key``)."""
    for key in AuditLog().signer.verifiers():
        typer.echo(key.encode())

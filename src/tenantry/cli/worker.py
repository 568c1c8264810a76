"""``tenantry worker``: a workflow worker process of its own, for any machine that reaches the
database. It runs sagas of every active tenant (or of ``--tenant`` ones: a worker dedicated to
a big tenant) until SIGTERM or SIGINT, then gives its leases back. The messages its steps queue
for Slack are delivered by an alert dispatcher it runs too."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from tenantry.alerts.delivery import SlackSender
from tenantry.alerts.dispatch import AlertDispatcher
from tenantry.alerts.notify import AlertNotifier
from tenantry.api.workers import import_definitions, workflow_caps
from tenantry.cli.support import migrated_database, run_command
from tenantry.config import load_settings
from tenantry.logging import configure_logging, get_logger
from tenantry.metadata.manager import MetadataManager
from tenantry.workflows import WorkflowWorker, default_registry

__all__ = ["worker"]

_log = get_logger("tenantry.worker")


def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=1024, help="Sagas at once (TENANTRY_WORKFLOW_CONCURRENCY)"),
    ] = None,
    definitions: Annotated[
        list[str] | None,
        typer.Option("--definitions", help="A module that registers definitions (repeatable)"),
    ] = None,
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", help="Serve only this tenant (repeatable)")
    ] = None,
) -> None:
    """Run workflows: claim due sagas of every tenant, fairly, and run them until stopped."""
    settings = load_settings()
    configure_logging(settings.log_level)

    async def work() -> int:
        import_definitions([*settings.workflow_definitions, *(definitions or ())])
        async with migrated_database(settings) as database:
            notifier = AlertNotifier(
                database, webhook_prefixes=settings.slack_webhook_prefixes.split(",")
            )
            sender = SlackSender()
            dispatcher = AlertDispatcher(notifier, sender, database)
            notifier.on_message = dispatcher.notice
            runner = WorkflowWorker(
                database,
                default_registry(),
                caps=workflow_caps(settings),
                concurrency=concurrency or settings.workflow_concurrency,
                lease=settings.workflow_lease,
                services={"metadata": MetadataManager(database), "notifier": notifier},
                tenants=tenant or None,
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await dispatcher.start()
            await runner.start()
            _log.info("worker started", name=runner.name, definitions=default_registry().names())
            try:
                await stop.wait()
            finally:
                await runner.close()
                await dispatcher.close()
                await sender.aclose()
            _log.info("worker stopped", name=runner.name, claimed=runner.claimed)
            return runner.claimed

    claimed = run_command(work)
    typer.echo(f"worker stopped after {claimed} workflows", err=True)

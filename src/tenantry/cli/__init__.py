"""The ``tenantry`` command: one module per command group, assembled in :mod:`.main`."""

from tenantry.cli.main import app, main

__all__ = ["app", "main"]

"""The service under test: the app made from the tests' settings with some changed, its lifespan
run, and a client over ASGI (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tenantry.api import create_app
from tenantry.api.state import AppState
from tenantry.config import Settings

__all__ = ["running_app", "with_tiers"]


@asynccontextmanager
async def running_app(
    settings: Settings, **changes: Any
) -> AsyncIterator[tuple[AppState, httpx.AsyncClient]]:
    """The service on ``settings`` with ``changes``: its state and a client of it."""
    app = create_app(settings.model_copy(update=changes))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield app.state.tenantry, client


def with_tiers(folder: Path, policies: str) -> Path:
    """A tier policies file in ``folder`` holding ``policies`` (TOML), for ``tier_policies``."""
    path = folder / "tiers.toml"
    path.write_text(policies)
    return path

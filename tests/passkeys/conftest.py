"""Fixtures of the passkeys tests: a manager on the worker's database, a software authenticator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tenantry.api import create_app
from tenantry.config import Settings
from tenantry.db.engine import Database
from tenantry.passkeys.manager import PasskeyManager
from tests.passkeys.authenticator import SoftAuthenticator

RP_ID = "localhost"
ORIGIN = "http://localhost:8000"


@pytest.fixture
def manager(db: Database) -> PasskeyManager:
    return PasskeyManager(db, rp_id=RP_ID, origin=ORIGIN)


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator(ORIGIN)


@pytest.fixture(scope="module")
async def passkeys_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app, its lifespan run."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tenantry") as client:
            yield app, client

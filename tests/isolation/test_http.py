"""The HTTP isolation suite: every route of the app, attacked by another tenant.

Routes are discovered from the app (``http_requests.discover``), so a later domain's route is
attacked without new test code; ``http_attacks.attack`` says what an attack is and what counts as
a breach. ``test_http_suite_can_fail`` adds broken routes to an app and shows that the same
check reports each of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from tenantry.actions import SESSIONS_READ, SETTINGS_READ, SETTINGS_WRITE
from tenantry.api import create_app
from tenantry.config import Settings, load_settings
from tenantry.db.engine import Database
from tenantry.errors import NotFound, TenantryError
from tenantry.http import DatabaseDep, provided, require
from tenantry.principal import Principal
from tenantry.sessions import SessionManager
from tenantry.sessions.schemas import SessionInfo
from tenantry.tenants import TenantSettings
from tenantry.tenants.schemas import Setting, SettingWrite
from tenantry.threats import SecurityEvents

from .http_attacks import Sides, attack
from .http_requests import Endpoint, discover
from .http_world import Credential, TenantData, Watch, create_tenant, credentials, populate

ENDPOINTS = discover(create_app(load_settings(api_token="collect-only")))


Victim = tuple[TenantData, Watch, tuple[Credential, ...]]


async def victim_of(client: httpx.AsyncClient) -> Victim:
    """A tenant with data of every kind, the watch on its state, and its credentials."""
    victim = await populate(client, "hv")
    own = tuple(await credentials(client, victim.tenant, "victim"))
    watch = Watch(victim)
    await watch.start(client)
    return victim, watch, own


async def sides_of(client: httpx.AsyncClient, victim: Victim, db: Database) -> Sides:
    """The victim, and a new attacker with every kind of credential."""
    attacker = await create_tenant(client, "ha")
    own = tuple(await credentials(client, attacker, "attacker"))
    return Sides(*victim, attacker, own, SecurityEvents(db))


@pytest.fixture(scope="module")
async def victim(client: httpx.AsyncClient) -> Victim:
    """One victim for the module; each attack checks that it is left as it was."""
    return await victim_of(client)


def test_every_route_is_found(settings: Settings) -> None:
    """The routes attacked are those the app serves, of every kind of access."""
    assert [str(e) for e in discover(create_app(settings))] == [str(e) for e in ENDPOINTS]
    assert {e.access for e in ENDPOINTS} == {"tenant", "platform", "public"}
    assert len([e for e in ENDPOINTS if e.access == "tenant"]) >= 20
    assert len({str(e) for e in ENDPOINTS}) == len(ENDPOINTS)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
async def test_another_tenant_gets_nothing_from_the_route(
    client: httpx.AsyncClient, victim: Victim, db: Database, endpoint: Endpoint
) -> None:
    findings = await attack(client, endpoint, await sides_of(client, victim, db))
    assert not findings, "\n".join(findings)


# -- the suite can fail -------------------------------------------------------------------

broken = APIRouter(prefix="/test-only")
Sessions = Annotated[SessionManager, Depends(provided("sessions"))]


@broken.get("/tenants/{tenant_id}/settings")
async def settings_of_any_tenant(
    tenant_id: str, _: Annotated[Principal, require(SETTINGS_READ)], db: DatabaseDep
) -> list[Setting]:
    """Reads the settings of the tenant in the path, whoever asks."""
    return await TenantSettings(tenant_id, db).list()


@broken.put("/tenants/{tenant_id}/settings/{key}")
async def write_into_any_tenant(
    tenant_id: str,
    key: str,
    body: SettingWrite,
    caller: Annotated[Principal, require(SETTINGS_WRITE)],
    db: DatabaseDep,
) -> dict[str, bool]:
    """Writes into the tenant in the path, and answers nothing about it."""
    await TenantSettings(tenant_id, db).set(key, body.value, actor=caller.actor)
    return {"done": True}


@broken.get("/sessions/{session_id}/exists")
async def any_session_exists(
    session_id: str, _: Annotated[Principal, require(SESSIONS_READ)], sessions: Sessions
) -> dict[str, bool]:
    """Whether a session exists, in whichever tenant its id names: no data, one bit."""
    try:
        await sessions.session_info(session_id)
    except TenantryError:
        return {"exists": False}
    return {"exists": True}


@broken.get("/sessions/{session_id}/quietly")
async def refuse_quietly(
    session_id: str, caller: Annotated[Principal, require(SESSIONS_READ)], sessions: Sessions
) -> SessionInfo:
    """Refuses another tenant's session with a 404, without recording the probe."""
    if not session_id.startswith(f"ses_{caller.tenant_id}."):
        raise NotFound(f"session {session_id!r} does not exist")
    return await sessions.session_info(session_id)


class Bug(TenantryError):
    """An error the app maps to no status: a 500."""


@broken.get("/settings/{key}/crash")
async def crash(key: str, _: Annotated[Principal, require(SETTINGS_READ)]) -> None:
    raise Bug(f"no such thing as {key}")


@pytest.fixture(scope="module")
async def broken_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with the broken routes, started, and a client of it."""
    app = create_app(settings)
    app.include_router(broken)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tenantry") as client:
            yield app, client


@pytest.fixture(scope="module")
async def broken_victim(broken_app: tuple[FastAPI, httpx.AsyncClient]) -> Victim:
    return await victim_of(broken_app[1])


@pytest.mark.parametrize(
    ("route", "reported"),
    [
        ("GET /test-only/tenants/{tenant_id}/settings", "carries the victim's"),
        ("PUT /test-only/tenants/{tenant_id}/settings/{key}", "the victim changed"),
        ("GET /test-only/sessions/{session_id}/exists", "depends on the victim's data"),
        ("GET /test-only/sessions/{session_id}/quietly", "no probe was recorded"),
        ("GET /test-only/settings/{key}/crash", "-> 500"),
    ],
)
async def test_http_suite_can_fail(
    broken_app: tuple[FastAPI, httpx.AsyncClient],
    broken_victim: Victim,
    db: Database,
    route: str,
    reported: str,
) -> None:
    """A route added to the app is found and attacked with no new test code, and its breach is
    reported by the check the suite runs on every route."""
    app, client = broken_app
    assert {str(e) for e in discover(app)} - {str(e) for e in ENDPOINTS} == {
        "GET /test-only/tenants/{tenant_id}/settings",
        "PUT /test-only/tenants/{tenant_id}/settings/{key}",
        "GET /test-only/sessions/{session_id}/exists",
        "GET /test-only/sessions/{session_id}/quietly",
        "GET /test-only/settings/{key}/crash",
    }
    [endpoint] = [e for e in discover(app) if str(e) == route]
    findings = await attack(client, endpoint, await sides_of(client, broken_victim, db))
    assert any(reported in finding for finding in findings), findings


@pytest.mark.parametrize("route", ["GET /settings/{key}", "PUT /settings/{key}"])
async def test_the_sound_routes_pass_on_the_same_app(
    broken_app: tuple[FastAPI, httpx.AsyncClient], broken_victim: Victim, db: Database, route: str
) -> None:
    """The positive twin: the check finds nothing on the sound routes of the app that has broken
    ones, so what it reports above is the broken routes' doing."""
    app, client = broken_app
    [endpoint] = [e for e in discover(app) if str(e) == route]
    assert await attack(client, endpoint, await sides_of(client, broken_victim, db)) == []

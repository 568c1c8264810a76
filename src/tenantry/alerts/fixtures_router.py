"""HTTP routes of the caller's tenant's Slack alert templates (the documents' fixtures API).

``fixtures:read`` to list, read and render, ``fixtures:write`` to change them and to teach the
tenant's translation memory. The ``tenant_id`` in the
path must be the caller's, and so must the tenant a fixture id names: another tenant's is a probe,
recorded, and answered 404 as if it did not exist.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from tenantry.access.probes import ensure_own_tenant
from tenantry.actions import FIXTURES_READ, FIXTURES_WRITE
from tenantry.alerts.fixture_schemas import SlackFixture, SlackFixtureEntity, TenantContext
from tenantry.alerts.fixtures import FIXTURE_ID_PREFIX, SlackFixtureManager
from tenantry.alerts.locales import LocaleInfo, supported_locales
from tenantry.alerts.memory import StoredTranslationMemory
from tenantry.errors import ConfigError
from tenantry.http import BACKEND, Route, problems, provided, require
from tenantry.principal import Principal
from tenantry.sessions.tokens import tenant_of_id

__all__ = ["router"]

router = APIRouter(route_class=Route, responses=problems(*BACKEND), tags=["fixtures"])
Reader = Annotated[Principal, require(FIXTURES_READ)]
Writer = Annotated[Principal, require(FIXTURES_WRITE)]
Fixtures = Annotated[SlackFixtureManager, Depends(provided("fixtures"))]
TenantId = Annotated[str, Path(min_length=1, max_length=200)]
FixtureId = Annotated[str, Path(min_length=5, max_length=300)]


class RenderBody(BaseModel):
    """A fixture to render, the locale to render it in, and the values of its templates."""

    model_config = ConfigDict(extra="forbid")

    fixture_id: str = Field(min_length=5, max_length=300)
    locale: str = Field(default="en", min_length=2, max_length=35, examples=["de-AT"])
    values: dict[str, Any] = Field(
        default_factory=dict, examples=[{"service": "playback", "count": 1234}]
    )
    #: An IANA time zone for the message's times (default: UTC).
    time_zone: str | None = Field(default=None, max_length=64)


class TranslationBody(BaseModel):
    """A translation the tenant teaches its memory (``memory``: a whole text, from
    ``source_locale``'s language) or glossary (``term``: a text that is the term, any language)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["memory", "term"] = "memory"
    source_locale: str = Field(default="en", min_length=2, max_length=35, examples=["en"])
    source: str = Field(min_length=1, max_length=20_000, examples=["Playback interrupted"])
    target_locale: str = Field(min_length=2, max_length=35, examples=["ja-JP"])
    target: str = Field(min_length=1, max_length=20_000, examples=["再生が中断されました"])


class RenderedOut(BaseModel):
    text: str
    blocks: list[dict[str, Any]]
    truncated: bool
    locale: str
    resolved_locale: str
    machine_translated: bool


class LocaleOut(BaseModel):
    tag: str
    english_name: str
    native_name: str
    default_tag: str
    direction: str

    @classmethod
    def of(cls, info: LocaleInfo) -> LocaleOut:
        return cls(
            tag=info.tag,
            english_name=info.english_name,
            native_name=info.native_name,
            default_tag=info.default_tag,
            direction=info.direction,
        )


async def _manager(
    request: Request, caller: Principal, tenant_id: str, fixtures: SlackFixtureManager
) -> SlackFixtureManager:
    """The caller's tenant's manager, once the path's tenant is the caller's (else a probe)."""
    await ensure_own_tenant(caller, tenant_id, f"tenant {tenant_id}", request)
    return fixtures.for_tenant(TenantContext(caller.tenant_id))


async def _own(request: Request, caller: Principal, fixture_id: str) -> None:
    owner = tenant_of_id(fixture_id, FIXTURE_ID_PREFIX)
    await ensure_own_tenant(caller, owner, fixture_id, request)


@router.get("/fixtures/locales")
async def list_locales(caller: Reader) -> list[LocaleOut]:
    """The platform's languages (CLDR formatting for each; any BCP 47 tag of them works)."""
    return [LocaleOut.of(info) for info in supported_locales()]


@router.get("/fixtures/{tenant_id}", responses=problems(404))
async def list_fixtures(
    tenant_id: TenantId, request: Request, caller: Reader, fixtures: Fixtures
) -> list[SlackFixture]:
    """The tenant's fixtures by name; a sensitive one's translations are left out."""
    manager = await _manager(request, caller, tenant_id, fixtures)
    return await manager.list_fixtures()


@router.post("/fixtures/{tenant_id}", status_code=status.HTTP_201_CREATED, responses=problems(404))
async def create_fixture(
    tenant_id: TenantId,
    body: SlackFixtureEntity,
    request: Request,
    caller: Writer,
    fixtures: Fixtures,
) -> SlackFixture:
    """Store a fixture; its templates are compiled now (422 listing each that does not)."""
    manager = await _manager(request, caller, tenant_id, fixtures)
    return await manager.create_fixture(body, actor=caller.actor)


@router.post("/fixtures/{tenant_id}/render", responses=problems(404))
async def render_fixture(
    tenant_id: TenantId, body: RenderBody, request: Request, caller: Reader, fixtures: Fixtures
) -> RenderedOut:
    """The fixture's Block Kit message in ``locale`` (by its fallback chain)."""
    manager = await _manager(request, caller, tenant_id, fixtures)
    await _own(request, caller, body.fixture_id)
    message = await manager.render(
        body.fixture_id, body.locale, body.values, time_zone=body.time_zone, actor=caller.actor
    )
    return RenderedOut(
        text=message.text,
        blocks=message.blocks,
        truncated=message.truncated,
        locale=message.locale,
        resolved_locale=message.resolved_locale,
        machine_translated=message.machine_translated,
    )


@router.post(
    "/fixtures/{tenant_id}/translations",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(404),
)
async def teach_translation(
    tenant_id: TenantId, body: TranslationBody, request: Request, caller: Writer, fixtures: Fixtures
) -> Response:
    """Add (or replace) an entry of the tenant's translation memory or glossary, from which a
    fixture's missing translation is made (and marked machine-made)."""
    manager = await _manager(request, caller, tenant_id, fixtures)
    memory = manager.translator
    if not isinstance(memory, StoredTranslationMemory):
        raise ConfigError("the service's fixtures have no stored translation memory")
    if body.kind == "term":
        await memory.add_term(
            caller.tenant_id, body.source, body.target_locale, body.target, actor=caller.actor
        )
    else:
        await memory.remember(
            caller.tenant_id, body.source_locale, body.source, body.target_locale, body.target,
            actor=caller.actor,
        )  # fmt: skip
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/fixtures/{tenant_id}/{fixture_id}", responses=problems(404))
async def get_fixture(
    tenant_id: TenantId, fixture_id: FixtureId, request: Request, caller: Reader, fixtures: Fixtures
) -> SlackFixture:
    """The fixture with its translations (reading a sensitive one is recorded)."""
    manager = await _manager(request, caller, tenant_id, fixtures)
    await _own(request, caller, fixture_id)
    return await manager.get_fixture(fixture_id, actor=caller.actor)


@router.put("/fixtures/{tenant_id}/{fixture_id}", responses=problems(404))
async def update_fixture(
    tenant_id: TenantId,
    fixture_id: FixtureId,
    body: SlackFixtureEntity,
    *,
    request: Request,
    caller: Writer,
    fixtures: Fixtures,
) -> SlackFixture:
    manager = await _manager(request, caller, tenant_id, fixtures)
    await _own(request, caller, fixture_id)
    return await manager.update_fixture(fixture_id, body, actor=caller.actor)


@router.delete(
    "/fixtures/{tenant_id}/{fixture_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(404),
)
async def delete_fixture(
    tenant_id: TenantId, fixture_id: FixtureId, request: Request, caller: Writer, fixtures: Fixtures
) -> Response:
    manager = await _manager(request, caller, tenant_id, fixtures)
    await _own(request, caller, fixture_id)
    await manager.delete_fixture(fixture_id, actor=caller.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

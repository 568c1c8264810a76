"""SlackFixtureManager: a tenant's localized Slack alert templates, the documents' "fixtures".

A fixture is a name, a severity and translations (``locales``: BCP 47 tag → title, description
and action required, each a Jinja2 template). Templates are compiled in the sandbox when a
fixture is created or updated, so a bad one is refused then (a 422
:class:`~tenantry.errors.TemplateError` listing each template that does not compile).

:meth:`SlackFixtureManager.render` picks the translation by the locale's fallback chain
(``de-AT`` → ``de-DE`` → ``de`` → the fixture's default → ``en``), renders it with the values
given, its numbers and dates in the locale asked for and the tenant's time zone, and lays it out
as a Block Kit message within Slack's limits. When no translation of the asked language exists,
the manager's :class:`~tenantry.alerts.translation.Translator` may supply one (the tenant's
translation memory by default); such a message is marked machine-made.

Every change (``fixtures.create``, ``fixtures.update``, ``fixtures.delete``) is audited in its
transaction. A sensitive fixture's translations are sealed with the tenant's data key, and every
read of them (get, render) is recorded as an access (``ComplianceManager.log_access``,
``fixture_read``). Ids name their tenant (``fx_<tenant>.<random>``), so a request for another
tenant's fixture is recognised as a probe by the HTTP layer before any lookup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import RowMapping

from tenantry.alerts.blocks import AlertMessage, build_message, validate_blocks
from tenantry.alerts.fixture_schemas import (
    TEMPLATE_FIELDS,
    LocaleTexts,
    RenderedFixture,
    SlackFixture,
    SlackFixtureEntity,
    TenantContext,
    check_locales,
)
from tenantry.alerts.formatting import urgency_emoji
from tenantry.alerts.locales import normalize_tag, parse_tag, resolve
from tenantry.alerts.models import slack_fixtures
from tenantry.alerts.templates import TemplateRenderer
from tenantry.alerts.translation import TranslationMemory, Translator
from tenantry.context import tenant_scope
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import ConfigError, NotFound
from tenantry.keys import Keyring
from tenantry.security import ComplianceManager, SecurityManager
from tenantry.sessions.tokens import make_id, tenant_of_id
from tenantry.tenants import TenantSettings

__all__ = ["FIXTURE_ID_PREFIX", "SEALED_PURPOSE", "SlackFixtureManager"]

FIXTURE_ID_PREFIX = "fx"
SEALED_PURPOSE = "slack_fixtures.locales"
READ_ACTION = "fixture_read"
_MACHINE_NOTE = "🤖 machine-translated from {tag}"


def _dump(locales: Mapping[str, LocaleTexts]) -> dict[str, dict[str, str]]:
    return {tag: texts.model_dump() for tag, texts in sorted(locales.items())}


class SlackFixtureManager(RecordsChanges):
    """The documents' ``SlackFixtureManager(tenant_context=...)``; see the module docstring.

    Made without ``tenant_context`` (the service's), it only makes managers :meth:`for_tenant`.
    ``database`` defaults to the process's; ``audit`` (the change log), ``keyring`` (sealing),
    ``compliance`` (access records) and ``translator`` (missing translations; default: an
    in-memory :class:`TranslationMemory`) are shared by :meth:`for_tenant`'s managers.
    """

    def __init__(
        self,
        tenant_context: TenantContext | None = None,
        database: Database | None = None,
        *,
        audit: ChangeLog | None = None,
        keyring: Keyring | None = None,
        compliance: ComplianceManager | None = None,
        translator: Translator | None = None,
        renderer: TemplateRenderer | None = None,
    ) -> None:
        self.tenant_context = tenant_context
        self._database, self._audit = database, audit
        self._keyring, self._compliance = keyring, compliance
        self.translator: Translator = translator or TranslationMemory()
        self.renderer = renderer or TemplateRenderer()

    @property
    def tenant_id(self) -> str:
        if self.tenant_context is None:
            raise ConfigError(
                "this manager has no tenant context: use for_tenant(TenantContext(...))"
            )
        return self.tenant_context.tenant_id

    def for_tenant(self, tenant_context: TenantContext) -> SlackFixtureManager:
        """A manager of another tenant sharing this one's database, logs, keys and translator."""
        return SlackFixtureManager(
            tenant_context,
            self._database,
            audit=self._audit,
            keyring=self._keyring,
            compliance=self._compliance,
            translator=self.translator,
            renderer=self.renderer,
        )

    async def initialize(self) -> None:
        """Open the database (the documents' call); nothing runs in the background."""
        await self._db()

    async def _keys(self) -> Keyring:
        if self._keyring is None:
            self._keyring = Keyring(await self._db())
        await self._keyring.load(self.tenant_id)
        return self._keyring

    async def _access(self, fixture_id: str, actor: str | None) -> None:
        if self._compliance is None:
            self._compliance = ComplianceManager(SecurityManager(await self._db()))
        await self._compliance.log_access(
            actor or "tenantry.alerts", READ_ACTION, fixture_id, self.tenant_id
        )

    async def _time_zone(self) -> str:
        """The context's time zone, else the tenant's stored one (UTC while it has none)."""
        given = self.tenant_context.time_zone if self.tenant_context is not None else None
        if given is not None:
            return given
        return await TenantSettings(self.tenant_id, await self._db()).time_zone()

    def _check_id(self, fixture_id: str) -> None:
        if not isinstance(fixture_id, str) or tenant_of_id(fixture_id, FIXTURE_ID_PREFIX) != (
            self.tenant_id
        ):
            raise NotFound(f"no fixture {NotFound.excerpt(fixture_id)}")

    def _values(
        self, fixture_id: str, entity: SlackFixtureEntity, keyring: Keyring | None
    ) -> dict[str, Any]:
        """The stored columns of ``entity`` (templates checked, sealed when sensitive)."""
        locales = _dump(check_locales(self.renderer, entity.locales))
        row: dict[str, Any] = {
            "name": entity.name,
            "severity": entity.severity.value,
            "default_locale": normalize_tag(entity.default_locale),
            "sensitive": entity.sensitive,
            "locales": None if entity.sensitive else locales,
            "sealed": None,
        }
        if keyring is not None:
            body = json.dumps(locales, ensure_ascii=False).encode()
            row["sealed"] = keyring.seal(self.tenant_id, body, SEALED_PURPOSE, fixture_id)
        return row

    # -- changes ----------------------------------------------------------------------------------

    async def create_fixture(
        self, fixture: SlackFixtureEntity, *, actor: str | None = None
    ) -> SlackFixture:
        """Store ``fixture``; its templates must compile (else :class:`TemplateError`)."""
        fixture_id = make_id(FIXTURE_ID_PREFIX, self.tenant_id)
        keyring = await self._keys() if fixture.sensitive else None
        row = self._values(fixture_id, fixture, keyring)
        trail = await self._trail(self.tenant_id)
        with tenant_scope(self.tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                stored = (
                    (
                        await conn.execute(
                            insert(slack_fixtures)
                            .values(tenant_id=self.tenant_id, id=fixture_id, **row)
                            .returning(*slack_fixtures.c)
                        )
                    )
                    .mappings()
                    .one()
                )
                await trail.record(
                    self.tenant_id, "fixtures.create", fixture_id, actor=actor,
                    detail=_detail(fixture),
                )  # fmt: skip
        return _view(stored, fixture.locales if fixture.sensitive else None)

    async def update_fixture(
        self, fixture_id: str, fixture: SlackFixtureEntity, *, actor: str | None = None
    ) -> SlackFixture:
        """Replace the fixture's name, severity and translations; :class:`NotFound` if none."""
        self._check_id(fixture_id)
        keyring = await self._keys() if fixture.sensitive else None
        row = self._values(fixture_id, fixture, keyring)
        trail = await self._trail(self.tenant_id)
        with tenant_scope(self.tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                stored = (
                    (
                        await conn.execute(
                            update(slack_fixtures)
                            .where(
                                slack_fixtures.c.tenant_id == self.tenant_id,
                                slack_fixtures.c.id == fixture_id,
                            )
                            .values(**row, updated_at=func.now())
                            .returning(*slack_fixtures.c)
                        )
                    )
                    .mappings()
                    .one_or_none()
                )
                if stored is None:
                    raise NotFound(f"no fixture {fixture_id!r}")
                await trail.record(
                    self.tenant_id, "fixtures.update", fixture_id, actor=actor,
                    detail=_detail(fixture),
                )  # fmt: skip
        return _view(stored, fixture.locales if fixture.sensitive else None)

    async def delete_fixture(self, fixture_id: str, *, actor: str | None = None) -> None:
        """Delete the fixture; :class:`NotFound` if there is none."""
        self._check_id(fixture_id)
        trail = await self._trail(self.tenant_id)
        with tenant_scope(self.tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                deleted = await conn.scalar(
                    delete(slack_fixtures)
                    .where(
                        slack_fixtures.c.tenant_id == self.tenant_id,
                        slack_fixtures.c.id == fixture_id,
                    )
                    .returning(slack_fixtures.c.id)
                )
                if deleted is None:
                    raise NotFound(f"no fixture {fixture_id!r}")
                await trail.record(self.tenant_id, "fixtures.delete", fixture_id, actor=actor)

    # -- reads ------------------------------------------------------------------------------------

    async def list_fixtures(self) -> list[SlackFixture]:
        """The tenant's fixtures by name; a sensitive one without its translations."""
        with tenant_scope(self.tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                rows = (
                    await conn.execute(
                        select(slack_fixtures).order_by(slack_fixtures.c.name, slack_fixtures.c.id)
                    )
                ).mappings()
                return [_view(row, None) for row in rows]

    async def get_fixture(self, fixture_id: str, *, actor: str | None = None) -> SlackFixture:
        """The fixture with its translations (a sensitive one's opened, the access recorded)."""
        self._check_id(fixture_id)
        with tenant_scope(self.tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                row = (
                    (
                        await conn.execute(
                            select(slack_fixtures).where(
                                slack_fixtures.c.tenant_id == self.tenant_id,
                                slack_fixtures.c.id == fixture_id,
                            )
                        )
                    )
                    .mappings()
                    .one_or_none()
                )
        if row is None:
            raise NotFound(f"no fixture {fixture_id!r}")
        if row["sealed"] is None:
            return _view(row, None)
        keyring = await self._keys()
        body = await keyring.decrypt(
            self.tenant_id, row["sealed"], purpose=SEALED_PURPOSE, record_id=fixture_id
        )
        await self._access(fixture_id, actor)
        locales = {tag: LocaleTexts(**texts) for tag, texts in json.loads(body).items()}
        return _view(row, locales)

    async def render(
        self,
        fixture_id: str,
        locale: str = "en",
        values: Mapping[str, object] | None = None,
        *,
        time_zone: str | None = None,
        actor: str | None = None,
    ) -> RenderedFixture:
        """The fixture's message in ``locale`` with ``values`` (module docstring)."""
        requested = normalize_tag(locale)
        fixture = await self.get_fixture(fixture_id, actor=actor)
        locales = fixture.locales or {}
        found = resolve(locales, requested, fixture.default_locale)
        tag = found.tag if found is not None else sorted(locales)[0]
        texts = found.value if found is not None else locales[tag]
        same = _same_language(tag, requested)
        machine = None if same else await self._translate(texts, tag, requested, fixture)
        shown = requested if same or machine is not None else tag
        context: dict[str, object] = {"severity": fixture.severity.value, **(values or {})}
        zone = time_zone or await self._time_zone()
        rendered = {
            name: self.renderer.render(
                getattr(machine or texts, name), context, locale=shown, time_zone=zone
            )
            for name in TEMPLATE_FIELDS
        }
        notes = [f"{urgency_emoji(fixture.severity.value)} {fixture.severity.value}"]
        if machine is not None:
            notes.append(_MACHINE_NOTE.format(tag=tag))
        built = build_message(AlertMessage(**rendered, context=notes))
        validate_blocks(built.blocks, built.text)
        return RenderedFixture(
            text=built.text,
            blocks=built.blocks,
            truncated=built.truncated,
            locale=requested,
            resolved_locale=tag,
            machine_translated=machine is not None,
        )

    async def _translate(
        self, texts: LocaleTexts, source: str, target: str, fixture: SlackFixture
    ) -> LocaleTexts | None:
        """``texts`` in ``target`` by the translator, every template of them, or None."""
        made: dict[str, str] = {}
        for name in TEMPLATE_FIELDS:
            text = getattr(texts, name)
            if not text:
                made[name] = text
                continue
            found = await self.translator.translate(
                self.tenant_id, text, source_locale=source, target_locale=target,
                context={"field": name, "severity": fixture.severity.value},
            )  # fmt: skip
            if found is None:
                return None
            made[name] = found
        translated = texts.model_copy(update=made)
        check_locales(self.renderer, {target: translated})
        return translated


def _same_language(tag: str, requested: str) -> bool:
    one, other = parse_tag(tag), parse_tag(requested)
    return (one.language, one.script) == (other.language, other.script)


def _detail(fixture: SlackFixtureEntity) -> dict[str, Any]:
    return {
        "name": fixture.name,
        "severity": fixture.severity.value,
        "locales": sorted(normalize_tag(tag) for tag in fixture.locales),
        "sensitive": fixture.sensitive,
    }


def _view(row: RowMapping, opened: Mapping[str, LocaleTexts] | None) -> SlackFixture:
    stored = row["locales"]
    locales: dict[str, LocaleTexts] | None
    if stored is not None:
        locales = {tag: LocaleTexts(**texts) for tag, texts in stored.items()}
    else:
        locales = None if opened is None else _normalized(opened)
    return SlackFixture(
        id=row["id"],
        name=row["name"],
        severity=row["severity"],
        default_locale=row["default_locale"],
        locales=locales,
        sensitive=row["sensitive"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _normalized(locales: Mapping[str, LocaleTexts]) -> dict[str, LocaleTexts]:
    return {normalize_tag(tag): texts for tag, texts in sorted(locales.items())}

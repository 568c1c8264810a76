"""The documents' fixture types: :class:`TenantContext`, :class:`SlackFixtureEntity` (what a
tenant writes), :class:`SlackFixture` (what is stored) and :class:`RenderedFixture` (a message).

A fixture's ``locales`` map BCP 47 tags to three Jinja2 templates (``title``, ``description``,
``action_required``); :func:`check_locales` normalises the tags and compiles every template in
the sandbox, listing each one that does not compile (``locales.<tag>.<field>``) in one
:class:`~tenantry.errors.TemplateError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from tenantry.alerts.blocks import BuiltMessage
from tenantry.alerts.locales import normalize_locales
from tenantry.alerts.rules import AlertSeverity
from tenantry.alerts.templates import TemplateRenderer
from tenantry.context import validate_tenant_id
from tenantry.errors import InvalidInput, Issue, TemplateError, TenantryError

__all__ = [
    "MAX_FIXTURE_LOCALES",
    "TEMPLATE_FIELDS",
    "LocaleTexts",
    "RenderedFixture",
    "SlackFixture",
    "SlackFixtureEntity",
    "TenantContext",
    "check_locales",
]

#: Translations one fixture may have.
MAX_FIXTURE_LOCALES = 100
TEMPLATE_FIELDS = ("title", "description", "action_required")
_EXAMPLE_LOCALES = {
    "de-DE": {
        "title": "🎵 Wiedergabe unterbrochen: {{ service }}",
        "description": "{{ count | number }} Fehler",
        "action_required": "Sofortige Untersuchung erforderlich",
    },
    "en": {
        "title": "🎵 Playback interrupted: {{ service }}",
        "description": "{{ count | number }} failures",
        "action_required": "Immediate investigation required",
    },
}


@dataclass(frozen=True, slots=True)
class TenantContext:
    """The tenant a :class:`~tenantry.alerts.SlackFixtureManager` works for. ``region`` and
    ``compliance_level`` are recorded with its accesses; ``time_zone`` (IANA) is the one its
    messages show times in: by default the tenant's stored setting ``time_zone``
    (:meth:`tenantry.tenants.TenantSettings.time_zone`), UTC while it has none."""

    tenant_id: str
    region: str = ""
    compliance_level: str = ""
    time_zone: str | None = None

    def __post_init__(self) -> None:
        validate_tenant_id(self.tenant_id)


class LocaleTexts(BaseModel):
    """One translation: three Jinja2 templates (mrkdwn; every value is escaped)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=2_000)
    description: str = Field(min_length=1, max_length=20_000)
    action_required: str = Field(default="", max_length=20_000)


class SlackFixtureEntity(BaseModel):
    """A fixture as a tenant writes it (create and update)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    severity: AlertSeverity = AlertSeverity.CRITICAL
    locales: dict[str, LocaleTexts] = Field(
        min_length=1, max_length=MAX_FIXTURE_LOCALES, examples=[_EXAMPLE_LOCALES]
    )
    #: The tenant's fallback before English when no translation of the asked language exists.
    default_locale: str = Field(default="en", min_length=2, max_length=35)
    #: Sealed with the tenant's key at rest; each read is audited as an access.
    sensitive: bool = False


class SlackFixture(BaseModel):
    """A stored fixture. ``locales`` is None in a list of a sensitive fixture (only reading it
    alone opens it, and is audited)."""

    id: str
    name: str
    severity: AlertSeverity
    default_locale: str
    locales: dict[str, LocaleTexts] | None
    sensitive: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RenderedFixture(BuiltMessage):
    """A rendered fixture: the Block Kit message, the locale asked for, the translation used,
    and whether a translator made the texts (then a context line says so too)."""

    locale: str = "en"
    resolved_locale: str = "en"
    machine_translated: bool = False


def check_locales(
    renderer: TemplateRenderer, locales: Mapping[str, LocaleTexts]
) -> dict[str, LocaleTexts]:
    """``locales`` with normalised tags, every template compiled; else one error listing all."""
    if not locales:
        raise InvalidInput("a fixture needs at least one translation")
    if len(locales) > MAX_FIXTURE_LOCALES:
        raise InvalidInput(f"a fixture has at most {MAX_FIXTURE_LOCALES} translations")
    table = normalize_locales(locales)
    issues: list[Issue] = []
    for tag, texts in table.items():
        for name in TEMPLATE_FIELDS:
            try:
                renderer.check(getattr(texts, name))
            except TenantryError as error:
                issues.append(Issue(("locales", tag, name), error.detail, "template"))
    if issues:
        first = issues[0]
        more = f" ({len(issues)} templates)" if len(issues) > 1 else ""
        where = ".".join(map(str, first.loc))
        raise TemplateError(f"{where}: {first.msg}{more}", issues=issues)
    return table

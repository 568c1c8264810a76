"""Where a missing translation of an alert template comes from.

A fixture is rendered in the locale asked for when it has a translation in that language (its
fallback chain, :mod:`tenantry.alerts.locales`). When it has none, the manager asks its
:class:`Translator` for the texts the chain did find, in the locale asked for; what a translator
gives is marked machine-made in the rendered message.

- :class:`TranslationMemory` is the default translator: each tenant's own translations, matched
  exactly (a text, its source language and the target locale), and its glossary of terms (a text
  that *is* a term gets the term's translation). It is kept in the process's memory: it is what a
  tenant or its tests teach the process, not a store shared between nodes
  (:class:`~tenantry.alerts.memory.StoredTranslationMemory` is that store).
- :class:`AILocalizationEngine` is the documents' facade: ``adapt_content(source_text,
  target_locale, context)`` asks the memory, then a :class:`MachineTranslator` provider when one
  is configured. Without a provider it raises :class:`~tenantry.errors.ConfigError` saying so;
  no machine translation is pretended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tenantry.alerts.locales import normalize_tag, parse_tag
from tenantry.context import validate_tenant_id
from tenantry.errors import ConfigError, InvalidInput

__all__ = [
    "AILocalizationEngine",
    "MachineTranslator",
    "TranslationMemory",
    "Translator",
    "check_text",
]

_MAX_TEXT = 20_000
_MAX_ENTRIES = 10_000  # a tenant's memory and glossary, each


class Translator(Protocol):
    """Translates a tenant's text; None when it cannot (the manager then falls back)."""

    async def translate(
        self,
        tenant_id: str,
        text: str,
        *,
        source_locale: str,
        target_locale: str,
        context: Mapping[str, Any] | None = None,
    ) -> str | None: ...


class MachineTranslator(Protocol):
    """A machine-translation provider (an HTTP API, a local model): always gives a text."""

    async def translate(
        self,
        text: str,
        *,
        source_locale: str,
        target_locale: str,
        context: Mapping[str, Any] | None = None,
    ) -> str: ...


def _language(tag: str) -> str:
    return parse_tag(tag).language


def check_text(value: object, what: str) -> str:
    """``value`` if it is a non-empty text within the size a translation may have."""
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT:
        raise InvalidInput(f"{what} must be a non-empty text of at most {_MAX_TEXT} characters")
    return value


@dataclass
class TranslationMemory:
    """Each tenant's translations and glossary, matched exactly (module docstring)."""

    _memory: dict[tuple[str, str, str, str], str] = field(default_factory=dict, repr=False)
    _glossary: dict[tuple[str, str, str], str] = field(default_factory=dict, repr=False)

    def remember(
        self, tenant_id: str, source_locale: str, source: str, target_locale: str, target: str
    ) -> None:
        """Remember that ``source`` (in ``source_locale``'s language) is ``target`` in
        ``target_locale``, for ``tenant_id``."""
        validate_tenant_id(tenant_id)
        key = (tenant_id, _language(source_locale), normalize_tag(target_locale), source)
        check_text(source, "the source text")
        self._check_room(sum(1 for k in self._memory if k[0] == tenant_id), key in self._memory)
        self._memory[key] = check_text(target, "the translation")

    def add_term(self, tenant_id: str, term: str, target_locale: str, translation: str) -> None:
        """A glossary entry of ``tenant_id``: ``term`` (any language) is ``translation``."""
        validate_tenant_id(tenant_id)
        key = (
            tenant_id,
            normalize_tag(target_locale),
            check_text(term, "the term").strip().lower(),
        )
        self._check_room(sum(1 for k in self._glossary if k[0] == tenant_id), key in self._glossary)
        self._glossary[key] = check_text(translation, "the term's translation")

    @staticmethod
    def _check_room(count: int, replacing: bool) -> None:
        if count >= _MAX_ENTRIES and not replacing:
            raise InvalidInput(f"a tenant's translation memory holds at most {_MAX_ENTRIES}")

    async def translate(
        self,
        tenant_id: str,
        text: str,
        *,
        source_locale: str,
        target_locale: str,
        context: Mapping[str, Any] | None = None,
    ) -> str | None:
        target = normalize_tag(target_locale)
        found = self._memory.get((tenant_id, _language(source_locale), target, text))
        if found is None:  # the locale's own entry first, then its language's
            language = _language(target)
            found = self._memory.get((tenant_id, _language(source_locale), language, text))
        if found is None:
            term = text.strip().lower()
            found = self._glossary.get((tenant_id, target, term)) or self._glossary.get(
                (tenant_id, _language(target), term)
            )
        return found


class AILocalizationEngine:
    """The documents' localisation facade: the tenant's memory first, then ``provider``."""

    def __init__(
        self, provider: MachineTranslator | None = None, memory: TranslationMemory | None = None
    ) -> None:
        self.provider = provider
        self.memory = memory or TranslationMemory()

    async def adapt_content(
        self, source_text: str, target_locale: str, context: Mapping[str, Any] | None = None
    ) -> str:
        """``source_text`` in ``target_locale``. ``context`` may name ``tenant_id`` (its memory
        is asked first) and ``source_locale`` (default ``en``); the rest goes to the provider.
        :class:`ConfigError` when neither the memory nor a provider can translate it."""
        context = dict(context or {})
        source_locale = str(context.get("source_locale") or "en")
        tenant_id = context.get("tenant_id")
        check_text(source_text, "the source text")
        normalize_tag(target_locale)
        if isinstance(tenant_id, str):
            found = await self.memory.translate(
                tenant_id, source_text, source_locale=source_locale, target_locale=target_locale
            )
            if found is not None:
                return found
        if self.provider is None:
            raise ConfigError(
                "no machine-translation provider is configured: give AILocalizationEngine a "
                "provider, or teach the tenant's TranslationMemory this text"
            )
        return await self.provider.translate(
            source_text, source_locale=source_locale, target_locale=target_locale, context=context
        )

    async def translate(
        self,
        tenant_id: str,
        text: str,
        *,
        source_locale: str,
        target_locale: str,
        context: Mapping[str, Any] | None = None,
    ) -> str | None:
        """As a :class:`Translator`: None instead of :class:`ConfigError` without a provider."""
        found = await self.memory.translate(
            tenant_id, text, source_locale=source_locale, target_locale=target_locale
        )
        if found is not None or self.provider is None:
            return found
        return await self.provider.translate(
            text, source_locale=source_locale, target_locale=target_locale, context=context
        )

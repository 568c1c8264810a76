"""Locale tags (BCP 47), their fallback chains, and the choice of a template's translation.

A tag is ``language[-Script][-REGION]`` (``de``, ``de-AT``, ``zh-Hant-TW``, ``es-419``); ``_`` is
read as ``-``. It is normalised the way CLDR (through Babel) sees it: ``DE_at`` is ``de-AT``,
deprecated codes are replaced (``iw`` → ``he``), a region that implies another script gains it
(``zh-TW`` → ``zh-Hant-TW``) and a script that is the language's default is dropped
(``zh-Hans-CN`` → ``zh-CN``). Variants, extensions and private-use subtags are refused.

The fallback chain of a tag, most specific first:

1. the tag itself;
2. its CLDR parent locales, when CLDR names one (``es-MX`` → ``es-419``, ``en-GB`` → ``en-001``,
   ``pt-AO`` → ``pt-PT``);
3. the language's default region, when the tag named another (``de-AT`` → ``de-DE``);
4. the language alone (``de``), keeping a script that is not the language's default
   (``zh-Hant``, never ``zh``, whose default script is another), then the languages CLDR counts
   as the same (``nb`` → ``no``);
5. the same for the tenant's default locale, then for ``en``.

:func:`resolve` walks that chain over a template's ``locales`` dict: a tag matches its own key;
a bare language (step 4) also matches any key of that language and script, its default region
first, so ``de-AT`` finds ``de-CH`` before it gives up German for English.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from babel import Locale, localedata
from babel.core import get_global

from tenantry.errors import InvalidInput

__all__ = [
    "FALLBACK_LOCALE",
    "LocaleInfo",
    "LocaleTag",
    "Resolution",
    "babel_locale",
    "fallback_chain",
    "normalize_locales",
    "normalize_tag",
    "parse_tag",
    "resolve",
    "supported_locales",
]

#: The last link of every chain.
FALLBACK_LOCALE = "en"

#: The platform's languages: the 27-language list of the platform's own document (seed 004: the
#: EU's languages, Norwegian, Chinese in both scripts, Japanese, Korean, Arabic, Russian,
#: Turkish) and Ukrainian, Hebrew, Hindi, Indonesian, Thai and Vietnamese. Each has CLDR data in
#: Babel (checked by the tests); any other language Babel knows is accepted as well.
_PLATFORM_LANGUAGES = (
    "en", "de", "fr", "es", "it", "pt", "nl", "sv", "da", "nb", "fi", "pl", "cs", "sk", "hu",
    "ro", "bg", "hr", "sl", "et", "lv", "lt", "el", "mt", "ga", "ru", "uk", "tr", "ar", "he",
    "hi", "id", "th", "vi", "ja", "ko", "zh", "zh-Hant",
)  # fmt: skip

#: Languages CLDR treats as one for fallback (its parent locales: ``nb`` and ``nn`` → ``no``);
#: ``no`` → ``nb`` is ours: a text in Bokmål serves a reader who asked for Norwegian.
_SAME_LANGUAGE: dict[str, tuple[str, ...]] = {"nb": ("no",), "nn": ("no",), "no": ("nb",)}

_MAX_TAG = 35  # RFC 5646 §4.4.1: every tag of language, script and region fits in 35 characters
_SHAPE = re.compile(
    r"(?P<language>[A-Za-z]{2,3})(?:-(?P<script>[A-Za-z]{4}))?(?:-(?P<region>[A-Za-z]{2}|\d{3}))?"
)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class LocaleTag:
    """A normalised tag; ``str(tag)`` is its BCP 47 form."""

    language: str
    script: str | None = None
    region: str | None = None

    def __str__(self) -> str:
        return "-".join(part for part in (self.language, self.script, self.region) if part)


@dataclass(frozen=True, slots=True)
class LocaleInfo:
    """One entry of :func:`supported_locales` (what ``GET /fixtures/locales`` lists)."""

    tag: str
    english_name: str
    native_name: str
    default_tag: str
    direction: str  # "ltr" or "rtl"


@dataclass(frozen=True, slots=True)
class Resolution(Generic[_T]):
    """What :func:`resolve` chose: the key used and its value, for the tag asked for."""

    requested: str
    tag: str
    value: _T

    @property
    def exact(self) -> bool:
        return self.tag == self.requested


def _likely(key: str) -> LocaleTag | None:
    """CLDR's likely subtags of ``key`` (``zh_TW`` → ``zh-Hant-TW``), or None."""
    full: str | None = get_global("likely_subtags").get(key)
    if full is None:
        return None
    parts = full.split("_")
    return LocaleTag(parts[0], parts[1] if len(parts) > 2 else None, parts[-1])


def _default_script(language: str) -> str | None:
    likely = _likely(language)
    return likely.script if likely else None


def _bad(value: object, why: str) -> InvalidInput:
    return InvalidInput(f"invalid locale {InvalidInput.excerpt(value)}: {why}")


@lru_cache(maxsize=4096)
def _parse(value: str) -> LocaleTag:
    text = value.strip().replace("_", "-")
    match = _SHAPE.fullmatch(text) if len(text) <= _MAX_TAG else None
    if match is None:
        raise _bad(value, "use a BCP 47 tag of language[-Script][-REGION], such as de-AT")
    language = match["language"].lower()
    script = match["script"].title() if match["script"] else None
    region = match["region"].upper() if match["region"] else None
    alias: str | None = get_global("language_aliases").get(language)
    if alias is not None:  # iw -> he, in -> id, sh -> sr_Latn
        language, _, alias_script = alias.partition("_")
        script = script or alias_script or None
    if not localedata.exists(language):
        raise _bad(value, f"CLDR has no language {language!r}")
    english = Locale("en")
    if script is not None and script not in english.scripts:
        raise _bad(value, f"unknown script {script!r}")
    if region is not None and region not in english.territories:
        raise _bad(value, f"unknown region {region!r}")
    if script is None and region is not None:
        implied = _likely(f"{language}_{region}")
        script = implied.script if implied else None
    if script == _default_script(language):
        script = None
    return LocaleTag(language, script, region)


def parse_tag(value: str) -> LocaleTag:
    """``value`` normalised, or :class:`InvalidInput` saying what is wrong with it."""
    if not isinstance(value, str):
        raise _bad(value, "a locale is a string")
    return _parse(value)


def normalize_tag(value: str) -> str:
    """The BCP 47 form of :func:`parse_tag` (``"DE_at"`` → ``"de-AT"``)."""
    return str(parse_tag(value))


def _default_region(language: str, script: str | None) -> str | None:
    likely = _likely(f"{language}_{script}") if script else _likely(language)
    if likely is None or likely.script != (script or _default_script(language)):
        return None
    return likely.region


def _parents(tag: LocaleTag) -> list[LocaleTag]:
    """CLDR's parent locales of ``tag`` above the language level (``es_MX`` → ``es_419``)."""
    found: list[LocaleTag] = []
    exceptions: Mapping[str, str] = get_global("parent_exceptions")
    key = "_".join(part for part in (tag.language, tag.script, tag.region) if part)
    while (parent := exceptions.get(key)) is not None and parent != "root":
        parts = parent.split("_")
        if len(parts) == 1:
            break  # a language-level parent (nb -> no) is step 4's
        found.append(_parse(parent.replace("_", "-")))
        key = parent
    return found


def _own_chain(tag: LocaleTag) -> list[LocaleTag]:
    chain = [tag, *_parents(tag)]
    region = _default_region(tag.language, tag.script)
    if tag.region is not None and region is not None and tag.region != region:
        chain.append(LocaleTag(tag.language, tag.script, region))
    chain.append(LocaleTag(tag.language, tag.script))
    if tag.script is None:
        chain.extend(LocaleTag(same) for same in _SAME_LANGUAGE.get(tag.language, ()))
    return chain


@lru_cache(maxsize=4096)
def _chain(tag: str, tenant_default: str | None) -> tuple[str, ...]:
    seeds = [tag, *([tenant_default] if tenant_default else []), FALLBACK_LOCALE]
    chain: dict[str, None] = {}
    for seed in seeds:
        chain.update((str(link), None) for link in _own_chain(_parse(seed)))
    return tuple(chain)


def fallback_chain(tag: str, tenant_default: str | None = None) -> tuple[str, ...]:
    """Every tag to try for ``tag``, most specific first, ending with ``en`` (module docstring).

    ``fallback_chain("de-AT", "fr-FR")`` is ``("de-AT", "de-DE", "de", "fr-FR", "fr", "en")``.
    """
    return _chain(normalize_tag(tag), normalize_tag(tenant_default) if tenant_default else None)


def normalize_locales(locales: Mapping[str, _T]) -> dict[str, _T]:
    """``locales`` with normalised keys; :class:`InvalidInput` for a bad key or two keys that name
    the same locale (``de_DE`` and ``de-DE``)."""
    normalised: dict[str, _T] = {}
    for key, value in locales.items():
        tag = normalize_tag(key)
        if tag in normalised:
            raise InvalidInput(f"two translations for the locale {tag} (one is {key!r})")
        normalised[tag] = value
    return normalised


def _language_match(link: LocaleTag, keys: Iterable[str]) -> str | None:
    """The key of ``link``'s language and script: its default region first, then by name."""
    candidates = sorted(
        key
        for key in keys
        if (parsed := _parse(key)).language == link.language and parsed.script == link.script
    )
    if not candidates:
        return None
    region = _default_region(link.language, link.script)
    preferred = str(LocaleTag(link.language, link.script, region))
    return preferred if preferred in candidates else candidates[0]


def resolve(
    locales: Mapping[str, _T], tag: str, tenant_default: str | None = None
) -> Resolution[_T] | None:
    """The translation of ``locales`` to use for ``tag``, or None when the chain finds none."""
    table = normalize_locales(locales)
    requested = normalize_tag(tag)
    for link in fallback_chain(requested, tenant_default):
        if link in table:
            return Resolution(requested, link, table[link])
        parsed = _parse(link)
        if parsed.region is None:
            key = _language_match(parsed, table)
            if key is not None:
                return Resolution(requested, key, table[key])
    return None


@lru_cache(maxsize=256)
def babel_locale(tag: str) -> Locale:
    """The most specific CLDR locale for formatting in ``tag`` (``no-NO``: ``no``; ``de-419``:
    ``de-DE``), following the chain's own links only (never the tenant's or English)."""
    for link in _own_chain(parse_tag(tag)):
        identifier = "_".join(p for p in (link.language, link.script, link.region) if p)
        if localedata.exists(identifier):
            return Locale.parse(identifier)
    return Locale.parse(parse_tag(tag).language)


@lru_cache(maxsize=1)
def supported_locales() -> tuple[LocaleInfo, ...]:
    """The platform's languages, each with its names and the tag of its default region."""
    infos = []
    for tag in _PLATFORM_LANGUAGES:
        parsed = _parse(tag)
        locale = babel_locale(tag)
        region = _default_region(parsed.language, parsed.script)
        infos.append(
            LocaleInfo(
                tag=str(parsed),
                english_name=locale.get_display_name("en") or tag,
                native_name=locale.get_display_name() or tag,
                default_tag=str(LocaleTag(parsed.language, parsed.script, region)),
                direction=locale.text_direction,
            )
        )
    return tuple(infos)

"""Locale tags: normalising, refusing, fallback chains, choosing a template's translation."""

from __future__ import annotations

import pytest
from babel import localedata

from tenantry.alerts import (
    babel_locale,
    fallback_chain,
    normalize_locales,
    normalize_tag,
    resolve,
    supported_locales,
)
from tenantry.errors import InvalidInput


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("de-AT", "de-AT"),
        ("DE_at", "de-AT"),
        (" en ", "en"),
        ("zh-TW", "zh-Hant-TW"),  # the region implies the traditional script
        ("zh-Hans-CN", "zh-CN"),  # the language's default script is dropped
        ("zh-hant", "zh-Hant"),
        ("iw", "he"),  # deprecated codes are replaced
        ("in-ID", "id-ID"),
        ("es-419", "es-419"),
        ("sr-Latn", "sr-Latn"),
        ("no-NO", "no-NO"),  # a valid tag even though CLDR has no no_NO data
    ],
)
def test_tags_are_normalised(given: str, normal: str) -> None:
    assert normalize_tag(given) == normal


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("", "language[-Script][-REGION]"),
        ("de-u-co-phonebk", "language[-Script][-REGION]"),  # extensions are refused
        ("de-DE-1996", "language[-Script][-REGION]"),  # variants too
        ("x" * 40, "language[-Script][-REGION]"),
        ("xq", "CLDR has no language 'xq'"),
        ("de-XX", "unknown region 'XX'"),
        ("de-Abcd", "unknown script 'Abcd'"),
        ("de DE", "language[-Script][-REGION]"),
    ],
)
def test_bad_tags_are_refused_with_the_reason(given: str, why: str) -> None:
    with pytest.raises(InvalidInput, match="invalid locale") as raised:
        normalize_tag(given)
    assert why in raised.value.detail


def test_a_tag_must_be_a_string() -> None:
    with pytest.raises(InvalidInput, match="a locale is a string"):
        normalize_tag(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tag", "tenant_default", "chain"),
    [
        # the issue's example: the tag, the language's default region, the language, the
        # tenant's default, English
        ("de-AT", "fr-FR", ("de-AT", "de-DE", "de", "fr-FR", "fr", "en")),
        ("de-AT", None, ("de-AT", "de-DE", "de", "en")),
        ("de-DE", None, ("de-DE", "de", "en")),
        ("de", "ja-JP", ("de", "ja-JP", "ja", "en")),
        ("en-US", "de-DE", ("en-US", "en", "de-DE", "de")),  # en is in the chain already
        # CLDR's parent locales come before the language's default region
        ("es-MX", None, ("es-MX", "es-419", "es-ES", "es", "en")),
        ("en-GB", None, ("en-GB", "en-001", "en-US", "en")),
        ("pt-AO", None, ("pt-AO", "pt-PT", "pt-BR", "pt", "en")),
        # a script that is not the language's default never falls back to the bare language
        ("zh-HK", None, ("zh-Hant-HK", "zh-Hant-TW", "zh-Hant", "en")),
        ("zh-SG", None, ("zh-SG", "zh-CN", "zh", "en")),
        # Norwegian: Bokmål and the macro-language serve each other
        ("nb-NO", None, ("nb-NO", "nb", "no", "en")),
        ("no", None, ("no", "nb", "en")),
    ],
)
def test_fallback_chains(tag: str, tenant_default: str | None, chain: tuple[str, ...]) -> None:
    assert fallback_chain(tag, tenant_default) == chain


def test_a_chain_normalises_its_inputs() -> None:
    assert fallback_chain("DE_at", "FR_fr") == fallback_chain("de-AT", "fr-FR")
    with pytest.raises(InvalidInput):
        fallback_chain("de-AT", "klingon")


DOCUMENT = {  # the locales of the document's example fixture
    "de-DE": {"title": "Spotify-Wiedergabe Unterbrochen"},
    "en-US": {"title": "Spotify Playback Interrupted"},
    "fr-FR": {"title": "Lecture Spotify Interrompue"},
}


@pytest.mark.parametrize(
    ("tag", "tenant_default", "used"),
    [
        ("de-DE", None, "de-DE"),
        ("de-AT", None, "de-DE"),  # the default region of the language
        ("de", None, "de-DE"),  # a bare language takes a key of that language
        ("fr-CA", None, "fr-FR"),
        ("ja-JP", "fr-FR", "fr-FR"),  # no Japanese: the tenant's default
        ("ja-JP", "it-IT", "en-US"),  # no Italian either: English
        ("ja-JP", None, "en-US"),
    ],
)
def test_resolution_follows_the_chain(tag: str, tenant_default: str | None, used: str) -> None:
    found = resolve(DOCUMENT, tag, tenant_default)
    assert found is not None
    assert (found.tag, found.value) == (used, DOCUMENT[used])
    assert found.exact == (used == normalize_tag(tag))


def test_any_region_of_the_language_beats_another_language() -> None:
    locales = {"de-CH": "Schweiz", "de-LI": "Liechtenstein", "en": "English"}
    found = resolve(locales, "de-AT")
    assert found is not None
    assert found.tag == "de-CH"
    assert resolve({"de-DE": 1, "de-CH": 2}, "de-LU") == resolve({"de-CH": 2, "de-DE": 1}, "de-LU")
    found = resolve({"de-CH": 2, "de-DE": 1}, "de-LU")
    assert found is not None
    assert found.tag == "de-DE"


def test_resolution_respects_scripts() -> None:
    locales = {"zh-CN": "简体", "zh-Hant-TW": "繁體", "en": "English"}
    assert getattr(resolve(locales, "zh-HK"), "value", None) == "繁體"
    assert getattr(resolve(locales, "zh-SG"), "value", None) == "简体"
    assert getattr(resolve({"zh-CN": "简体", "en": "en"}, "zh-TW"), "value", None) == "en"


def test_resolution_normalises_keys_and_may_find_nothing() -> None:
    found = resolve({"de_de": "x"}, "DE-AT")
    assert found is not None
    assert (found.requested, found.tag) == ("de-AT", "de-DE")
    assert resolve({"ja": "x"}, "de-AT") is None
    assert resolve({}, "en") is None


def test_two_keys_for_one_locale_are_refused() -> None:
    with pytest.raises(InvalidInput, match="two translations for the locale de-DE"):
        normalize_locales({"de-DE": 1, "de_DE": 2})
    with pytest.raises(InvalidInput, match="invalid locale"):
        normalize_locales({"de-DE": 1, "nonsense!": 2})
    assert normalize_locales({"DE_de": 1, "zh-TW": 2}) == {"de-DE": 1, "zh-Hant-TW": 2}


def test_formatting_takes_the_most_specific_cldr_locale() -> None:
    assert str(babel_locale("de-AT")) == "de_AT"
    assert str(babel_locale("no-NO")) == "no"  # CLDR has no no_NO
    assert str(babel_locale("de-419")) == "de_DE"
    assert str(babel_locale("zh-TW")) == "zh_Hant_TW"


def test_the_platform_languages() -> None:
    infos = supported_locales()
    tags = [info.tag for info in infos]
    assert len(tags) == len(set(tags)) >= 27
    # the platform document's list (seed 004), Chinese in both scripts
    for tag in [
        "en",
        "de",
        "fr",
        "es",
        "it",
        "pt",
        "sv",
        "da",
        "fi",
        "nb",
        "pl",
        "cs",
        "hu",
        "ro",
        "bg",
        "et",
        "lv",
        "lt",
        "el",
        "mt",
        "hr",
        "sl",
        "ga",
        "sk",
        "nl",
        "zh",
        "zh-Hant",
        "ja",
        "ko",
        "ar",
        "ru",
        "tr",
    ]:
        assert tag in tags
    for info in infos:
        assert localedata.exists(str(babel_locale(info.default_tag))), info
        assert normalize_tag(info.default_tag) == info.default_tag
        assert info.english_name
        assert info.native_name
    by_tag = {info.tag: info for info in infos}
    assert by_tag["ar"].direction == by_tag["he"].direction == "rtl"
    assert by_tag["de"].direction == "ltr"
    assert (by_tag["de"].default_tag, by_tag["de"].native_name) == ("de-DE", "Deutsch")
    assert by_tag["zh-Hant"].default_tag == "zh-Hant-TW"

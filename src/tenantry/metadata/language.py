"""A record's or a query's language (BCP 47) as a PostgreSQL text search configuration."""

from __future__ import annotations

import re

from tenantry.errors import InvalidInput

__all__ = ["TEXT_CONFIGS", "text_config"]

#: Primary language subtag -> the snowball configuration PostgreSQL ships for it. A language
#: without one, or one the server lacks (the SQL looks it up in ``pg_ts_config``), is searched
#: by its words as written (``simple``).
TEXT_CONFIGS = {
    "ar": "arabic",
    "hy": "armenian",
    "eu": "basque",
    "ca": "catalan",
    "da": "danish",
    "nl": "dutch",
    "en": "english",
    "fi": "finnish",
    "fr": "french",
    "de": "german",
    "el": "greek",
    "hi": "hindi",
    "hu": "hungarian",
    "id": "indonesian",
    "ga": "irish",
    "it": "italian",
    "lt": "lithuanian",
    "ne": "nepali",
    "no": "norwegian",
    "nb": "norwegian",
    "nn": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "es": "spanish",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}
_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


def text_config(language: str | None) -> str:
    """The configuration for ``language`` (``simple`` for None or a language without one)."""
    if language is None:
        return "simple"
    if not isinstance(language, str) or len(language) > 35 or not _TAG.fullmatch(language):
        raise InvalidInput(f"invalid language tag {InvalidInput.excerpt(language)}: use BCP 47")
    return TEXT_CONFIGS.get(language.split("-", 1)[0].lower(), "simple")

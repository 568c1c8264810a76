"""Each tenant's translation memory and glossary in PostgreSQL: a :class:`Translator` whose
entries survive a restart and are shared by every process of the service.

It matches as :class:`~tenantry.alerts.translation.TranslationMemory` does: a whole text, from
its source language to the target locale (the locale's own entry first, then its language's),
and a glossary term (a text that *is* the term, lower-cased, from any language). Entries are
keyed by the SHA-256 of their source text, so a long template is an entry like a short one.
Each entry written is audited (``translations.remember``, ``translations.term``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from tenantry.alerts.locales import normalize_tag, parse_tag
from tenantry.alerts.models import translation_memory
from tenantry.alerts.translation import check_text
from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput

__all__ = ["MAX_TENANT_TRANSLATIONS", "StoredTranslationMemory"]

#: Entries (texts and terms together) one tenant may have.
MAX_TENANT_TRANSLATIONS = 20_000
_ANY_LANGUAGE = "*"


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


class StoredTranslationMemory(RecordsChanges):
    """The tenants' translation memories and glossaries in the database (module docstring)."""

    def __init__(self, database: Database | None = None, *, audit: ChangeLog | None = None) -> None:
        self._database, self._audit = database, audit

    async def remember(
        self,
        tenant_id: str,
        source_locale: str,
        source: str,
        target_locale: str,
        target: str,
        *,
        actor: str | None = None,
    ) -> None:
        """``source`` (in ``source_locale``'s language) is ``target`` in ``target_locale``."""
        language = parse_tag(source_locale).language
        await self._put(
            tenant_id, kind="memory", language=language, source=source,
            target_locale=target_locale, target=target, actor=actor,
        )  # fmt: skip

    async def add_term(
        self,
        tenant_id: str,
        term: str,
        target_locale: str,
        translation: str,
        *,
        actor: str | None = None,
    ) -> None:
        """A glossary entry: ``term`` (any language, any case) is ``translation``."""
        term = check_text(term, "the term").strip().lower()
        await self._put(
            tenant_id, kind="term", language=_ANY_LANGUAGE, source=term,
            target_locale=target_locale, target=translation, actor=actor,
        )  # fmt: skip

    async def _put(
        self,
        tenant_id: str,
        *,
        kind: str,
        language: str,
        source: str,
        target_locale: str,
        target: str,
        actor: str | None,
    ) -> None:
        validate_tenant_id(tenant_id)
        target_tag = normalize_tag(target_locale)
        row = {
            "tenant_id": tenant_id,
            "kind": kind,
            "source_language": language,
            "target_locale": target_tag,
            "source_digest": _digest(check_text(source, "the source text")),
            "source": source,
            "target": check_text(target, "the translation"),
        }
        trail = await self._trail(tenant_id)
        statement = insert(translation_memory).values(**row)
        statement = statement.on_conflict_do_update(
            index_elements=[
                translation_memory.c.tenant_id,
                translation_memory.c.kind,
                translation_memory.c.source_language,
                translation_memory.c.target_locale,
                translation_memory.c.source_digest,
            ],
            set_={"target": statement.excluded.target, "updated_at": func.now()},
        )
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                count = await conn.scalar(select(func.count()).select_from(translation_memory))
                if (count or 0) >= MAX_TENANT_TRANSLATIONS:
                    raise InvalidInput(
                        f"a tenant's translation memory holds at most {MAX_TENANT_TRANSLATIONS}"
                    )
                await conn.execute(statement)
                action = "translations.term" if kind == "term" else "translations.remember"
                await trail.record(
                    tenant_id, action, target_tag, actor=actor,
                    detail={"source_language": language},
                )  # fmt: skip

    async def translate(
        self,
        tenant_id: str,
        text: str,
        *,
        source_locale: str,
        target_locale: str,
        context: Mapping[str, Any] | None = None,
    ) -> str | None:
        validate_tenant_id(tenant_id)
        target = parse_tag(target_locale)
        language = parse_tag(source_locale).language
        candidates = [
            ("memory", language, str(target), _digest(text)),
            ("memory", language, target.language, _digest(text)),
            ("term", _ANY_LANGUAGE, str(target), _digest(text.strip().lower())),
            ("term", _ANY_LANGUAGE, target.language, _digest(text.strip().lower())),
        ]
        c = translation_memory.c
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                rows = (
                    await conn.execute(
                        select(
                            c.kind, c.source_language, c.target_locale, c.source_digest, c.target
                        )
                        .where(c.tenant_id == tenant_id)
                        .where(c.source_digest.in_({key[3] for key in candidates}))
                    )
                ).all()
        found = {(r[0], r[1], r[2], bytes(r[3])): str(r[4]) for r in rows}
        return next((found[key] for key in candidates if key in found), None)

"""SlackFixtureManager on PostgreSQL: the documents' fixtures created, read, listed, updated and
deleted per tenant and audited; templates checked when stored; rendered by the locale's fallback
chain in the locale asked for and the tenant's time zone; sensitive fixtures sealed and their
reads recorded; missing translations from the translator, marked machine-made; and the HTTP
routes with the caller's tenant enforced."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from babel import dates, numbers
from sqlalchemy import text

from tenantry.access.probes import PROBE_EVENT
from tenantry.alerts import (
    AILocalizationEngine,
    AlertSeverity,
    LocaleTexts,
    SlackFixtureEntity,
    SlackFixtureManager,
    StoredTranslationMemory,
    TenantContext,
    TranslationMemory,
)
from tenantry.audit import trail_for
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import ConfigError, InvalidInput, NotFound, TemplateError
from tenantry.threats import SecurityEvents
from tests.conftest import TOKEN, NewTenant

GERMAN = {
    "title": "🎵 Wiedergabe unterbrochen: {{ service }}",
    "description": "{{ count | number }} Fehler seit {{ since | time }}",
    "action_required": "Sofortige Untersuchung erforderlich",
}
ENGLISH = {
    "title": "🎵 Playback interrupted: {{ service }}",
    "description": "{{ count | number }} failures since {{ since | time }}",
    "action_required": "Immediate investigation required",
}
VALUES: dict[str, Any] = {
    "service": "playback <!channel>",
    "count": 1234567,
    "since": datetime(2026, 12, 6, 9, 30, tzinfo=UTC),
}


def _entity(**changes: Any) -> SlackFixtureEntity:
    fields: dict[str, Any] = {
        "name": "spotify_wiedergabe_fehler",
        "severity": AlertSeverity.CRITICAL,
        "locales": {"de_de": GERMAN, "en": ENGLISH},
    }
    return SlackFixtureEntity(**(fields | changes))


async def _manager(db: Database, new_tenant: NewTenant, **kwargs: Any) -> SlackFixtureManager:
    tenant = (await new_tenant("fx")).id
    context = TenantContext(tenant, "eu-central-1", "DSGVO_STRIKT", time_zone="Europe/Vienna")
    manager = SlackFixtureManager(tenant_context=context, database=db, **kwargs)
    await manager.initialize()
    return manager


async def _audited(db: Database, tenant: str) -> list[tuple[str, str]]:
    entries = await trail_for(db).audit_log.entries(tenant, 0, 100)
    return [(e.entry.action, e.entry.resource) for e in entries if e.entry is not None]


async def test_fixtures_are_stored_listed_updated_deleted_and_audited(
    db: Database, new_tenant: NewTenant
) -> None:
    manager = await _manager(db, new_tenant)
    created = await manager.create_fixture(_entity(), actor="fahed")
    assert created.id.startswith(f"fx_{manager.tenant_id}.")
    assert created.locales is not None
    assert sorted(created.locales) == ["de-DE", "en"]  # tags normalised
    assert (await manager.get_fixture(created.id)).locales == created.locales
    second = await manager.create_fixture(_entity(name="a_first", severity=AlertSeverity.INFO))
    assert [f.name for f in await manager.list_fixtures()] == ["a_first", created.name]
    changed = await manager.update_fixture(
        created.id, _entity(locales={"fr-FR": ENGLISH}, default_locale="FR_fr"), actor="fahed"
    )
    assert changed.default_locale == "fr-FR"
    assert changed.locales is not None
    assert list(changed.locales) == ["fr-FR"]
    assert changed.updated_at >= created.updated_at
    await manager.delete_fixture(second.id)
    with pytest.raises(NotFound):
        await manager.get_fixture(second.id)
    with pytest.raises(NotFound):
        await manager.delete_fixture(second.id)
    with pytest.raises(NotFound):
        await manager.update_fixture(second.id, _entity())
    audited = await _audited(db, manager.tenant_id)
    assert [a for a, _ in audited] == [
        "fixtures.create",
        "fixtures.create",
        "fixtures.update",
        "fixtures.delete",
    ]
    assert created.id in audited[0][1]
    assert second.id in audited[3][1]


async def test_another_tenant_sees_none_of_them(db: Database, new_tenant: NewTenant) -> None:
    mine = await _manager(db, new_tenant)
    other = mine.for_tenant(TenantContext((await new_tenant("fx")).id))
    fixture = await mine.create_fixture(_entity())
    assert await other.list_fixtures() == []
    for call in (other.get_fixture, other.delete_fixture):
        with pytest.raises(NotFound):
            await call(fixture.id)
    forged = fixture.id.replace(mine.tenant_id, other.tenant_id)  # its id, the other's tenant
    with pytest.raises(NotFound):
        await other.get_fixture(forged)
    with pytest.raises(NotFound):
        await other.render(forged, "de-DE", VALUES)
    assert (await mine.get_fixture(fixture.id)).name == fixture.name


async def test_bad_templates_are_refused_when_stored_listing_each(
    db: Database, new_tenant: NewTenant
) -> None:
    manager = await _manager(db, new_tenant)
    broken = {
        "de-DE": GERMAN | {"title": "{{ service "},
        "en": ENGLISH | {"description": "{% for x in y %}"},
    }
    with pytest.raises(TemplateError) as caught:
        await manager.create_fixture(_entity(locales=broken))
    assert [issue.loc for issue in caught.value.issues] == [
        ("locales", "de-DE", "title"),
        ("locales", "en", "description"),
    ]
    with pytest.raises(InvalidInput, match="locale"):
        await manager.create_fixture(_entity(locales={"not a tag": ENGLISH}))
    with pytest.raises(InvalidInput, match="two translations"):
        await manager.create_fixture(_entity(locales={"de_DE": GERMAN, "de-de": GERMAN}))
    fine = await manager.create_fixture(_entity())
    with pytest.raises(TemplateError):
        await manager.update_fixture(fine.id, _entity(locales={"en": ENGLISH | {"title": "{{"}}))
    assert (await manager.get_fixture(fine.id)).locales == fine.locales  # unchanged
    assert [a for a, _ in await _audited(db, manager.tenant_id)] == ["fixtures.create"]


async def test_render_falls_back_by_chain_in_the_locale_and_time_zone_asked(
    db: Database, new_tenant: NewTenant
) -> None:
    manager = await _manager(db, new_tenant)
    fixture = await manager.create_fixture(_entity())
    message = await manager.render(fixture.id, "de-AT", VALUES)
    assert (message.locale, message.resolved_locale) == ("de-AT", "de-DE")
    assert not message.machine_translated
    count = numbers.format_decimal(1234567, locale="de_AT")
    at = dates.format_time(
        VALUES["since"], "short", tzinfo=ZoneInfo("Europe/Vienna"), locale="de_AT"
    )
    header, description = message.blocks[0], message.blocks[1]
    assert header["text"]["text"] == "🎵 Wiedergabe unterbrochen: playback <!channel>"  # plain
    assert description["text"]["text"] == f"{count} Fehler seit {at}"
    assert at == "10:30"  # 09:30 UTC in Vienna
    assert "&lt;!channel&gt;" in message.text  # mrkdwn escaped: no mention
    assert message.blocks[-1]["type"] == "context"
    assert "🚨 critical" in message.blocks[-1]["elements"][0]["text"]
    # de-AT's own words, from a de-DE text: January is Jänner in Austria
    month = {"title": "Monat", "description": "{{ day | date('long') }}"}
    months = await manager.create_fixture(_entity(locales={"de-DE": month}))
    austrian = await manager.render(months.id, "de-AT", {"day": "2026-01-15T12:00:00Z"})
    assert austrian.blocks[1]["text"]["text"] == "15. Jänner 2026"
    german = await manager.render(months.id, "de-DE", {"day": "2026-01-15T12:00:00Z"})
    assert german.blocks[1]["text"]["text"] == "15. Januar 2026"
    # a time zone given for the message wins over the tenant's
    utc = await manager.render(fixture.id, "de-AT", VALUES, time_zone="UTC")
    assert utc.blocks[1]["text"]["text"].endswith("09:30")
    # a language the fixture lacks: English, formatted as English, not machine-made
    japanese = await manager.render(fixture.id, "ja-JP", VALUES)
    assert (japanese.resolved_locale, japanese.machine_translated) == ("en", False)
    assert japanese.blocks[1]["text"]["text"].startswith(
        numbers.format_decimal(1234567, locale="en")
    )
    # the fixture's default locale comes before English
    french = await manager.create_fixture(
        _entity(locales={"fr-FR": GERMAN | {"title": "FR"}, "en": ENGLISH}, default_locale="fr")
    )
    assert (await manager.render(french.id, "ja", VALUES)).resolved_locale == "fr-FR"
    with pytest.raises(InvalidInput, match="time zone"):
        await manager.render(fixture.id, "de-AT", VALUES, time_zone="Mars/Olympus")
    with pytest.raises(TemplateError, match="undefined"):
        await manager.render(fixture.id, "de-AT", {"count": 1})


async def test_a_missing_translation_from_the_translator_is_marked_machine_made(
    db: Database, new_tenant: NewTenant
) -> None:
    memory = TranslationMemory()
    manager = await _manager(db, new_tenant, translator=memory)
    fixture = await manager.create_fixture(_entity())
    tenant = manager.tenant_id
    memory.remember(tenant, "en", ENGLISH["title"], "ja-JP", "🎵 再生中断: {{ service }}")
    memory.remember(tenant, "en", ENGLISH["description"], "ja", "{{ count | number }} 件の障害")
    # one text is still missing: the English original, not a half translation
    partial = await manager.render(fixture.id, "ja-JP", VALUES)
    assert (partial.resolved_locale, partial.machine_translated) == ("en", False)
    memory.add_term(tenant, ENGLISH["action_required"], "ja", "直ちに調査が必要です")
    made = await manager.render(fixture.id, "ja-JP", VALUES)
    assert (made.locale, made.resolved_locale, made.machine_translated) == ("ja-JP", "en", True)
    assert made.blocks[0]["text"]["text"] == "🎵 再生中断: playback <!channel>"
    japanese_count = numbers.format_decimal(1234567, locale="ja")
    assert made.blocks[1]["text"]["text"] == f"{japanese_count} 件の障害"
    assert "machine-translated from en" in made.blocks[-1]["elements"][-1]["text"]
    # another tenant's memory is its own
    other = manager.for_tenant(TenantContext((await new_tenant("fx")).id))
    theirs = await other.create_fixture(_entity())
    assert not (await other.render(theirs.id, "ja-JP", VALUES)).machine_translated


async def test_the_localization_engine_says_when_it_has_no_provider() -> None:
    engine = AILocalizationEngine()
    context = {"domain": "musik_streaming", "urgency": "high", "technical_level": "ingenieur"}
    with pytest.raises(ConfigError, match="no machine-translation provider"):
        await engine.adapt_content("Kritischer Systemfehler erkannt", "ja-JP", context)
    engine.memory.remember("t-one", "de", "Kritischer Systemfehler erkannt", "ja", "重大な障害")
    found = await engine.adapt_content(
        "Kritischer Systemfehler erkannt",
        "ja-JP",
        context | {"tenant_id": "t-one", "source_locale": "de"},
    )
    assert found == "重大な障害"

    class Upper:
        async def translate(
            self,
            text: str,
            *,
            source_locale: str,
            target_locale: str,
            context: Mapping[str, Any] | None = None,
        ) -> str:
            return f"[{target_locale}] {text.upper()}"

    provided = AILocalizationEngine(provider=Upper())
    assert await provided.adapt_content("alert", "fr-FR", context) == "[fr-FR] ALERT"
    assert (
        await provided.translate("t-one", "x", source_locale="en", target_locale="fr") == "[fr] X"
    )


async def test_sensitive_fixtures_are_sealed_and_each_read_recorded(
    db: Database, new_tenant: NewTenant
) -> None:
    manager = await _manager(db, new_tenant)
    tenant = manager.tenant_id
    secret = {"title": "Incident {{ service }}", "description": "IBAN NL91ABNA0417164300"}
    fixture = await manager.create_fixture(
        _entity(locales={"en": secret}, sensitive=True), actor="fahed"
    )
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            row = (
                await conn.execute(
                    text("select locales, sealed from tenantry.slack_fixtures where id = :i"),
                    {"i": fixture.id},
                )
            ).one()
    assert row.locales is None
    assert b"NL91ABNA" not in row.sealed
    [listed] = await manager.list_fixtures()
    assert (listed.sensitive, listed.locales) == (True, None)  # a list opens nothing
    opened = await manager.get_fixture(fixture.id, actor="ops")
    assert opened.locales == {"en": LocaleTexts(**secret)}
    rendered = await manager.render(fixture.id, "de-AT", {"service": "billing"}, actor="ops")
    assert "NL91ABNA0417164300" in rendered.text
    reads = [r for a, r in await _audited(db, tenant) if a == "fixture_read"]
    assert len(reads) == 2
    assert all(fixture.id in r for r in reads)
    # made non-sensitive again: stored in the clear, and reads are no longer recorded
    plain = await manager.update_fixture(fixture.id, _entity(locales={"en": secret}))
    assert plain.locales is not None
    await manager.get_fixture(fixture.id)
    assert [a for a, _ in await _audited(db, tenant)].count("fixture_read") == 2


async def test_routes_enforce_the_callers_tenant(
    client: httpx.AsyncClient, db: Database, new_tenant: NewTenant
) -> None:
    tenant, other = (await new_tenant("fx")).id, (await new_tenant("fx")).id
    headers = {**TOKEN, "X-Tenant-ID": tenant}
    body = _entity().model_dump(mode="json")
    created = await client.post(f"/fixtures/{tenant}", json=body, headers=headers)
    assert created.status_code == 201, created.text
    fixture = created.json()
    assert sorted(fixture["locales"]) == ["de-DE", "en"]
    listed = await client.get(f"/fixtures/{tenant}", headers=headers)
    assert [f["id"] for f in listed.json()] == [fixture["id"]]
    render = {"fixture_id": fixture["id"], "locale": "de-AT", "values": {"service": "s", "count": 2,
              "since": "2026-12-06T09:30:00Z"}}  # fmt: skip
    rendered = await client.post(f"/fixtures/{tenant}/render", json=render, headers=headers)
    assert rendered.status_code == 200, rendered.text
    assert rendered.json()["resolved_locale"] == "de-DE"
    assert rendered.json()["blocks"][1]["text"]["text"] == "2 Fehler seit 09:30"  # UTC
    # the tenant's stored time zone: checked when set, then every render shows times in it
    for zone in ("Mars/Olympus", "../../etc/passwd", "", 3):
        wrong = await client.put("/settings/time_zone", json={"value": zone}, headers=headers)
        assert wrong.status_code == 422, wrong.text
    assert (await client.get("/settings/time_zone", headers=headers)).status_code == 404
    zone = await client.put("/settings/time_zone", json={"value": "Europe/Vienna"}, headers=headers)
    assert zone.status_code == 200, zone.text
    vienna = await client.post(f"/fixtures/{tenant}/render", json=render, headers=headers)
    assert vienna.json()["blocks"][1]["text"]["text"] == "2 Fehler seit 10:30"
    given = await client.post(
        f"/fixtures/{tenant}/render", json=render | {"time_zone": "UTC"}, headers=headers
    )
    assert given.json()["blocks"][1]["text"]["text"] == "2 Fehler seit 09:30"  # asked for
    bad = body | {"locales": {"en": ENGLISH | {"title": "{{ x"}}}
    refused = await client.put(f"/fixtures/{tenant}/{fixture['id']}", json=bad, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["title"] == "template error"
    locales = await client.get("/fixtures/locales", headers=headers)
    assert {"de", "ja", "zh-Hant"} <= {item["tag"] for item in locales.json()}
    # another tenant's path and another tenant's fixture: 404, and a probe in the caller's
    events = SecurityEvents(db)
    since = datetime.now(UTC)
    theirs = {**TOKEN, "X-Tenant-ID": other}
    for method, path, json_body in (
        ("GET", f"/fixtures/{tenant}", None),
        ("GET", f"/fixtures/{other}/{fixture['id']}", None),
        ("DELETE", f"/fixtures/{other}/{fixture['id']}", None),
        ("POST", f"/fixtures/{other}/render", render),
    ):
        answer = await client.request(method, path, json=json_body, headers=theirs)
        assert answer.status_code == 404, (method, path, answer.text)
    probes = await events.since(other, since, kinds=(PROBE_EVENT,))
    assert len(probes) == 4
    assert (await client.get(f"/fixtures/{tenant}/{fixture['id']}", headers=headers)).is_success
    deleted = await client.delete(f"/fixtures/{tenant}/{fixture['id']}", headers=headers)
    assert deleted.status_code == 204


async def test_the_stored_memory_survives_the_manager_and_is_per_tenant(
    db: Database, new_tenant: NewTenant
) -> None:
    memory = StoredTranslationMemory(db)
    manager = await _manager(db, new_tenant, translator=memory)
    tenant = manager.tenant_id
    fixture = await manager.create_fixture(_entity())
    long_title = ENGLISH["title"] + " " + "x" * 5000  # a key longer than an index entry
    await memory.remember(tenant, "en-US", ENGLISH["title"], "ja", "🎵 再生中断: {{ service }}")
    await memory.remember(tenant, "en", long_title, "ja", "長い")
    await memory.remember(tenant, "en", ENGLISH["description"], "ja-JP", "{{ count }} 件")
    await memory.remember(tenant, "en", ENGLISH["description"], "ja-JP", "{{ count }} 件の障害")
    await memory.add_term(
        tenant, "  IMMEDIATE investigation required", "ja", "直ちに調査", actor="ops"
    )
    # a new memory object on the same database: what another process reads
    again = manager.for_tenant(TenantContext(tenant))
    again.translator = StoredTranslationMemory(db)
    made = await again.render(fixture.id, "ja-JP", VALUES)
    assert made.machine_translated
    assert made.blocks[1]["text"]["text"] == "1234567 件の障害"  # the later entry won
    assert made.blocks[2]["text"]["text"] == "直ちに調査"
    assert (
        await memory.translate(tenant, long_title, source_locale="en", target_locale="ja-JP")
        == "長い"
    )
    assert await memory.translate(tenant, "nothing", source_locale="en", target_locale="ja") is None
    other = (await new_tenant("fx")).id
    assert (
        await memory.translate(other, ENGLISH["title"], source_locale="en", target_locale="ja")
        is None
    )
    audited = [a for a, _ in await _audited(db, tenant)]
    assert audited.count("translations.remember") == 4
    assert audited.count("translations.term") == 1
    with pytest.raises(InvalidInput):
        await memory.remember(tenant, "en", "", "ja", "x")


async def test_the_service_translates_from_what_the_tenant_taught_it(
    client: httpx.AsyncClient, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("fx")).id
    headers = {**TOKEN, "X-Tenant-ID": tenant}
    english = {"title": "Playback interrupted", "description": "Check {{ service }}"}
    body = {"name": "playback", "locales": {"en": english}}
    fixture = (await client.post(f"/fixtures/{tenant}", json=body, headers=headers)).json()
    render = {"fixture_id": fixture["id"], "locale": "ja-JP", "values": {"service": "s"}}
    before = await client.post(f"/fixtures/{tenant}/render", json=render, headers=headers)
    assert before.json()["machine_translated"] is False
    for entry in (
        {"source": english["title"], "target_locale": "ja", "target": "再生中断"},
        {"kind": "term", "source": english["description"], "target_locale": "ja-JP",
         "target": "{{ service }} を確認"},
    ):  # fmt: skip
        taught = await client.post(f"/fixtures/{tenant}/translations", json=entry, headers=headers)
        assert taught.status_code == 204, taught.text
    after = (await client.post(f"/fixtures/{tenant}/render", json=render, headers=headers)).json()
    assert (after["machine_translated"], after["resolved_locale"]) == (True, "en")
    assert after["blocks"][0]["text"]["text"] == "再生中断"
    assert after["blocks"][1]["text"]["text"] == "s を確認"
    other = (await new_tenant("fx")).id
    foreign = await client.post(
        f"/fixtures/{tenant}/translations",
        json={"source": "x", "target_locale": "ja", "target": "y"},
        headers={**TOKEN, "X-Tenant-ID": other},
    )
    assert foreign.status_code == 404

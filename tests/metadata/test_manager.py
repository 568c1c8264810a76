"""MetadataManager's records: versions, rollback, sealing, compression, listing, isolation."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tenantry.audit.trail import trail_for
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import (
    ContentTooLarge,
    InvalidInput,
    InvalidTenantId,
    MetadataNotFound,
    VersionConflict,
)
from tenantry.metadata import MetadataManager, MetadataType
from tests.conftest import NewTenant


@pytest.fixture(scope="module")
def manager(db: Database) -> MetadataManager:
    return MetadataManager(db)


async def test_versions_update_and_rollback(
    manager: MetadataManager, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    record_id = await manager.create_metadata(
        tenant, MetadataType.SCHEMA, {"table": "users", "version": "2.1.0"}, actor="ada"
    )
    assert record_id.startswith(f"md_{tenant}.")
    first = await manager.get_metadata(tenant, record_id)
    assert (first.version, first.content, first.metadata_type) == (
        1,
        {"table": "users", "version": "2.1.0"},
        MetadataType.SCHEMA,
    )
    second = await manager.update_metadata(
        tenant, record_id, {"table": "users", "version": "2.2.0"}, expected_version=1
    )
    assert (second.version, second.content["version"]) == (2, "2.2.0")
    with pytest.raises(VersionConflict, match="at version 2, not 1"):
        await manager.update_metadata(tenant, record_id, {"table": "x"}, expected_version=1)
    assert (await manager.get_metadata(tenant, record_id)).content["table"] == "users"
    rolled = await manager.rollback(tenant, record_id, 1, expected_version=2)
    assert (rolled.version, rolled.content) == (3, first.content)
    history = await manager.versions(tenant, record_id)
    assert [(v.version, v.change, v.content["version"]) for v in history] == [
        (1, "create", "2.1.0"),
        (2, "update", "2.2.0"),
        (3, "rollback", "2.1.0"),
    ]
    assert (await manager.get_version(tenant, record_id, 2)).content["version"] == "2.2.0"
    with pytest.raises(MetadataNotFound):
        await manager.get_version(tenant, record_id, 9)
    with pytest.raises(MetadataNotFound):
        await manager.rollback(tenant, record_id, 9)
    # versions are immutable, for the application role too
    with tenant_scope(tenant), pytest.raises(Exception, match="immutable"):
        async with db.tenant_transaction() as conn:
            await conn.execute(text("update tenantry.metadata_versions set change = 'update'"))
    await manager.delete_metadata(tenant, record_id, expected_version=3)
    with pytest.raises(MetadataNotFound):
        await manager.get_metadata(tenant, record_id)
    with pytest.raises(MetadataNotFound):
        await manager.versions(tenant, record_id)
    entries = await trail_for(db).audit_log.entries(tenant, 0, 100)
    audited = [(e.entry.action, e.entry.resource) for e in entries if e.entry is not None]
    assert audited == [
        ("metadata.create", f"metadata:{record_id}"),
        ("metadata.update", f"metadata:{record_id}"),
        ("metadata.rollback", f"metadata:{record_id}"),
        ("metadata.delete", f"metadata:{record_id}"),
    ]
    assert entries[0].entry is not None
    assert entries[0].entry.actor == "ada"


async def test_sensitive_fields_are_sealed_and_large_content_compressed(
    manager: MetadataManager, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    content = {"artist": "Nadia Vos", "iban": "NL91ABNA0417164300", "notes": "x" * 5000}
    record_id = await manager.create_metadata(
        tenant, "business", content, sensitive_fields=["iban"], language="en"
    )
    record = await manager.get_metadata(tenant, record_id)
    assert record.content == dict(sorted(content.items()))
    assert record.sensitive_fields == ("iban",)
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            row = (
                await conn.execute(
                    text(
                        "select v.encoding, v.payload, v.sealed, r.fields, r.search_text "
                        "from tenantry.metadata_versions v join tenantry.metadata_records r "
                        "on r.id = v.record_id where v.record_id = :id"
                    ),
                    {"id": record_id},
                )
            ).one()
    assert row.encoding & 1  # the public part is compressed
    assert len(row.payload) < 1000
    assert b"NL91ABNA" not in row.payload
    assert b"NL91ABNA" not in row.sealed
    assert "iban" not in row.fields
    assert "NL91" not in row.search_text
    assert row.fields["artist"] == "Nadia Vos"
    whole = await manager.create_metadata(
        tenant, "business", {"contract": "secret"}, sensitive=True
    )
    sealed = await manager.get_metadata(tenant, whole)
    assert sealed.content == {"contract": "secret"}
    assert sealed.sensitive_fields == ("*",)
    # a rollback re-seals under the record's current sensitivity
    updated = await manager.update_metadata(
        tenant, record_id, {"artist": "Nadia Vos", "iban": "DE89"}, expected_version=1
    )
    assert updated.content["iban"] == "DE89"
    assert (await manager.rollback(tenant, record_id, 1)).content["iban"] == "NL91ABNA0417164300"


async def test_list_filters_and_pages(manager: MetadataManager, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    made = [
        await manager.create_metadata(
            tenant,
            "technical" if i % 2 else "business",
            {"genre": "jazz" if i < 3 else "pop", "n": i},
        )
        for i in range(7)
    ]
    page = await manager.list_metadata(tenant, limit=3)
    assert [r.id for r in page.items] == made[::-1][:3]
    seen = [r.id for r in page.items]
    while page.next_cursor is not None:
        page = await manager.list_metadata(tenant, limit=3, cursor=page.next_cursor)
        seen += [r.id for r in page.items]
    assert seen == made[::-1]
    jazz = await manager.list_metadata(tenant, fields={"genre": "jazz"})
    assert sorted(r.id for r in jazz.items) == sorted(made[:3])
    tech = await manager.list_metadata(tenant, metadata_type="technical", fields={"n": 5})
    assert [r.id for r in tech.items] == [made[5]]
    with pytest.raises(InvalidInput, match="cursor"):
        await manager.list_metadata(tenant, cursor="bm90IGEgY3Vyc29y")
    with pytest.raises(InvalidInput, match="limit"):
        await manager.list_metadata(tenant, limit=0)


async def test_another_tenants_record_is_not_found(
    manager: MetadataManager, new_tenant: NewTenant
) -> None:
    a, b = (await new_tenant()).id, (await new_tenant()).id
    record_id = await manager.create_metadata(a, "business", {"title": "Blue Hour"})
    forged = record_id.replace(f"md_{a}.", f"md_{b}.")
    for tenant, rid in ((b, record_id), (b, forged)):
        with pytest.raises(MetadataNotFound):
            await manager.get_metadata(tenant, rid)
        with pytest.raises(MetadataNotFound):
            await manager.update_metadata(tenant, rid, {"title": "x"}, expected_version=1)
        with pytest.raises(MetadataNotFound):
            await manager.delete_metadata(tenant, rid)
        with pytest.raises(MetadataNotFound):
            await manager.rollback(tenant, rid, 1)
    assert (await manager.get_metadata(a, record_id)).content == {"title": "Blue Hour"}
    assert (await manager.list_metadata(b)).items == []


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"metadata_type": "poem"}, InvalidInput, "MetadataType"),
        ({"content": ["not", "an", "object"]}, InvalidInput, "JSON object"),
        ({"content": {"x": float("nan")}}, InvalidInput, "finite"),
        ({"content": {"x": {1, 2}}}, InvalidInput, "not JSON"),
        ({"content": {"x": "y" * 300_000}}, ContentTooLarge, "at most"),
        ({"language": "not a tag!"}, InvalidInput, "language"),
        ({"sensitive_fields": "iban"}, InvalidInput, "sensitive_fields"),
        ({"tenant_id": "Bad Id"}, InvalidTenantId, "invalid tenant id"),
    ],
)
async def test_bad_input_is_refused_and_stores_nothing(
    manager: MetadataManager,
    new_tenant: NewTenant,
    arguments: dict[str, object],
    error: type[Exception],
    match: str,
) -> None:
    tenant = (await new_tenant()).id
    call: dict[str, object] = {
        "tenant_id": tenant,
        "metadata_type": "business",
        "content": {"title": "ok"},
    } | arguments
    with pytest.raises(error, match=match):
        await manager.create_metadata(**call)  # type: ignore[arg-type]
    assert (await manager.list_metadata(tenant)).items == []

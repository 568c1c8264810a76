"""Records that name a schema: validated on write, sealed where the schema says, upgraded on read
and by the backfill."""

from __future__ import annotations

import pytest

from tenantry.db.engine import Database
from tenantry.errors import InvalidInput, SchemaNotFound, SchemaViolation
from tenantry.metadata import MetadataManager, SchemaRegistry
from tests.conftest import NewTenant

TRACK_V1 = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "bpm": {"type": "integer", "minimum": 20},
        "isrc": {"type": "string", "x-sensitive": True},
    },
    "required": ["title"],
    "additionalProperties": False,
}
# v2 renames title -> name and adds genre with a default: BACKWARD compatible
TRACK_V2 = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "aliases": ["title"]},
        "bpm": {"type": "integer", "minimum": 20},
        "isrc": {"type": "string", "x-sensitive": True},
        "genre": {"type": "string", "default": "unknown"},
    },
    "required": ["name"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def manager(db: Database) -> MetadataManager:
    return MetadataManager(db)


async def test_content_is_validated_and_the_schemas_sensitive_fields_sealed(
    manager: MetadataManager, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    registry: SchemaRegistry = manager.schemas.registry
    await registry.register(tenant, "track", TRACK_V1)
    with pytest.raises(SchemaViolation) as refused:
        await manager.create_metadata(tenant, "technical", {"bpm": 3}, "track")
    assert {issue.type for issue in refused.value.issues} == {"required", "minimum"}
    with pytest.raises(SchemaNotFound):
        await manager.create_metadata(tenant, "technical", {"title": "x"}, "no-such-schema")
    with pytest.raises(InvalidInput, match="schema_name"):
        await manager.create_metadata(tenant, "technical", {"title": "x"}, schema_version=1)
    assert (await manager.list_metadata(tenant)).items == []
    record_id = await manager.create_metadata(
        tenant, "technical", {"title": "Night Drive", "isrc": "NLA1R2400001"}, "track"
    )
    record = await manager.get_metadata(tenant, record_id)
    assert (record.schema_name, record.schema_version) == ("track", 1)
    assert record.sensitive_fields == ("isrc",)  # from the schema's x-sensitive
    with pytest.raises(SchemaViolation):
        await manager.update_metadata(tenant, record_id, {"title": 5}, expected_version=1)
    assert (await manager.get_metadata(tenant, record_id)).version == 1


async def test_records_are_upgraded_on_read_and_by_the_backfill(
    manager: MetadataManager, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    registry: SchemaRegistry = manager.schemas.registry
    await registry.register(tenant, "track", TRACK_V1)
    ids = [
        await manager.create_metadata(tenant, "technical", {"title": f"t{i}", "bpm": 90}, "track")
        for i in range(5)
    ]
    await registry.register(tenant, "track", TRACK_V2)
    manager.schemas.latest_ttl = 0.0  # see the new version at once
    record = await manager.get_metadata(tenant, ids[0])
    assert record.content == {"name": "t0", "bpm": 90, "genre": "unknown"}
    assert (record.version, record.schema_version) == (1, 2)  # read through v2, stored as v1
    written = await manager.get_version(tenant, ids[0], 1)
    assert written.content == {"title": "t0", "bpm": 90}
    with pytest.raises(InvalidInput, match="cannot go back"):
        await manager.update_metadata(
            tenant, ids[1], {"name": "x"}, expected_version=1, schema_version=2
        )  # v2 is fine...
        await manager.update_metadata(
            tenant, ids[1], {"title": "x"}, expected_version=2, schema_version=1
        )  # ...but never back to v1
    assert await manager.count_behind(tenant, "track") == 4
    step = await manager.upgrade_records(tenant, "track", batch=3)
    assert (step.upgraded, step.failed, step.more) == (3, (), True)
    step = await manager.upgrade_records(tenant, "track", batch=3, after=step.last)
    assert (step.upgraded, step.more) == (1, False)
    assert await manager.count_behind(tenant, "track") == 0
    history = await manager.versions(tenant, ids[2])
    assert [(v.change, v.schema_version) for v in history] == [("create", 1), ("upgrade", 2)]
    assert history[-1].content == {"name": "t2", "bpm": 90, "genre": "unknown"}
    again = await manager.upgrade_records(tenant, "track")
    assert (again.upgraded, again.more) == (0, False)  # resumable: nothing is behind


async def test_an_upgrade_that_does_not_validate_leaves_the_record(
    manager: MetadataManager, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    registry: SchemaRegistry = manager.schemas.registry
    await registry.register(tenant, "deal", {"type": "object"}, compatibility="NONE")
    record_id = await manager.create_metadata(tenant, "business", {"fee": 10}, "deal")
    strict = {"type": "object", "required": ["territory"]}
    await registry.register(tenant, "deal", strict, compatibility="NONE")
    manager.schemas.latest_ttl = 0.0
    read = await manager.get_metadata(tenant, record_id)
    assert (read.content, read.schema_version) == ({"fee": 10}, 1)  # NONE: read as written
    step = await manager.upgrade_records(tenant, "deal")
    assert (step.upgraded, step.failed) == (0, (record_id,))
    assert (await manager.get_metadata(tenant, record_id)).version == 1

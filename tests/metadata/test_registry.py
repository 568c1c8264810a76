"""SchemaRegistry on the embedded PostgreSQL: versions, compatibility, isolation, audit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tenantry.audit.trail import trail_for
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import (
    ContentTooLarge,
    IncompatibleSchema,
    InvalidInput,
    SchemaNotFound,
    SchemaViolation,
)
from tenantry.metadata import CompatibilityMode, SchemaRegistry
from tenantry.metadata.models import metadata_schemas
from tenantry.metadata.validation import MAX_SCHEMA_BYTES
from tests.conftest import NewTenant

TRACK: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "duration_s": {"type": "integer", "minimum": 0},
    },
    "required": ["title"],
    "additionalProperties": False,
}
#: TRACK with a genre that has a default: BACKWARD compatible (the upgrade fills it in).
TRACK_V2: dict[str, Any] = {
    **TRACK,
    "properties": {**TRACK["properties"], "genre": {"type": "string", "default": "unknown"}},
    "required": ["title", "genre"],
}
#: TRACK_V2 with genre required and no default: not BACKWARD compatible with TRACK.
TRACK_BREAKS: dict[str, Any] = {
    **TRACK_V2,
    "properties": {**TRACK["properties"], "genre": {"type": "string"}},
}


async def test_versions_are_numbered_and_identical_schemas_reuse_theirs(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sch")).id
    registry = SchemaRegistry(db)
    first = await registry.register(tenant, "track", TRACK, actor="alice")
    assert (first.version, first.compatibility, first.created_by) == (1, "BACKWARD", "alice")
    again = await registry.register(tenant, "track", dict(reversed(list(TRACK.items()))))
    assert again.version == 1  # the same JSON, keys in another order
    second = await registry.register(tenant, "track", TRACK_V2)
    assert second.version == 2
    assert (await registry.get(tenant, "track")).version == 2
    assert (await registry.get(tenant, "track", 1)).document == TRACK
    assert [v.version for v in await registry.versions(tenant, "track")] == [1, 2]
    [subject] = await registry.subjects(tenant)
    assert (subject.name, subject.latest, subject.compatibility) == ("track", 2, "BACKWARD")
    entries = [e.entry for e in await trail_for(db).audit_log.entries(tenant) if e.entry]
    registered = [e for e in entries if e.action == "schema.register"]
    assert [(e.resource, e.actor) for e in registered] == [
        ("schema:track", "alice"),
        ("schema:track", "system"),  # no actor given
    ]


async def test_an_incompatible_schema_is_refused_with_reasons_and_nothing_stored(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sch")).id
    registry = SchemaRegistry(db)
    await registry.register(tenant, "track", TRACK)
    report = await registry.check(tenant, "track", TRACK_BREAKS)
    assert not report.compatible
    assert report.reasons == (
        "properties.genre: required by the new schema, not by the old, and without a default; "
        "breaks BACKWARD",
    )
    with pytest.raises(IncompatibleSchema) as caught:
        await registry.register(tenant, "track", TRACK_BREAKS)
    assert [(i.loc, i.msg) for i in caught.value.issues] == [(("schema",), report.reasons[0])]
    assert [v.version for v in await registry.versions(tenant, "track")] == [1]
    # NONE accepts it; the mode given with the registration becomes the subject's
    third = await registry.register(tenant, "track", TRACK_BREAKS, compatibility="NONE")
    assert (third.version, third.compatibility) == (2, CompatibilityMode.NONE)
    assert (await registry.subjects(tenant))[0].compatibility is CompatibilityMode.NONE


async def test_transitive_modes_compare_with_every_version(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sch")).id
    registry = SchemaRegistry(db)
    narrow = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 10}}}
    wide = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 100}}}
    await registry.register(tenant, "n", wide, compatibility="NONE")
    await registry.register(tenant, "n", narrow)  # NONE: no check
    await registry.set_compatibility(tenant, "n", CompatibilityMode.FORWARD)
    middle = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 50}}}
    # FORWARD: the latest (maximum 10) cannot read 50; BACKWARD_TRANSITIVE: v2 fine, v1 not
    assert not (await registry.check(tenant, "n", middle)).compatible
    await registry.set_compatibility(tenant, "n", "BACKWARD")
    assert (await registry.check(tenant, "n", middle)).compatible
    await registry.set_compatibility(tenant, "n", "BACKWARD_TRANSITIVE")
    report = await registry.check(tenant, "n", middle)
    assert report.reasons == (
        "version 1: properties.n: 'maximum' narrowed from 100 (old) to 50 (new); breaks BACKWARD",
    )


async def test_bad_input_is_refused_before_anything_is_written(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sch")).id
    registry = SchemaRegistry(db)
    for name in ("", "a b", "x" * 101, "ü"):
        with pytest.raises(InvalidInput, match="invalid schema name"):
            await registry.register(tenant, name, TRACK)
    with pytest.raises(InvalidInput) as caught:
        await registry.register(tenant, "t", {"type": "strin", "$ref": "https://evil.example/s"})
    assert [i.type for i in caught.value.issues] == ["ref"]
    with pytest.raises(InvalidInput, match="not a valid JSON Schema"):
        await registry.register(tenant, "t", {"type": "strin"})
    with pytest.raises(ContentTooLarge):
        await registry.register(tenant, "t", {"description": "x" * MAX_SCHEMA_BYTES})
    with pytest.raises(InvalidInput, match="CompatibilityMode"):
        await registry.register(tenant, "t", TRACK, compatibility="SIDEWAYS")
    assert await registry.subjects(tenant) == []
    with pytest.raises(SchemaNotFound):
        await registry.get(tenant, "t")
    with pytest.raises(SchemaNotFound):
        await registry.set_compatibility(tenant, "t", "FULL")
    with pytest.raises(InvalidInput, match="version"):
        await registry.get(tenant, "t", 0)


async def test_another_tenant_neither_sees_nor_changes_a_schema(
    db: Database, new_tenant: NewTenant
) -> None:
    a, b = (await new_tenant("sch")).id, (await new_tenant("sch")).id
    registry = SchemaRegistry(db)
    await registry.register(a, "track", TRACK)
    assert await registry.subjects(b) == []
    with pytest.raises(SchemaNotFound):
        await registry.get(b, "track", 1)
    with pytest.raises(SchemaNotFound):
        await registry.versions(b, "track")
    with pytest.raises(SchemaNotFound):
        await registry.set_compatibility(b, "track", "NONE")
    with pytest.raises(SchemaNotFound):
        await registry.validate_content(b, "track", 1, {"title": "x"})
    # b's own subject of the same name is b's: version 1 of a different schema
    assert (await registry.register(b, "track", TRACK_BREAKS)).version == 1
    assert (await registry.get(a, "track")).document == TRACK
    assert (await registry.subjects(a))[0].compatibility is CompatibilityMode.BACKWARD


async def test_concurrent_registrations_get_distinct_versions(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sch")).id
    registry = SchemaRegistry(db)
    schemas = [
        {"type": "object", "properties": {"n": {"type": "integer"}}, "title": f"v{i}"}
        for i in range(4)
    ]
    made = await asyncio.gather(
        *(registry.register(tenant, "c", s, compatibility="NONE") for s in schemas)
    )
    assert sorted(v.version for v in made) == [1, 2, 3, 4]


async def test_validate_content_lists_every_violation_and_caches(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sch")).id
    registry = SchemaRegistry(db)
    await registry.register(tenant, "track", TRACK)
    await registry.validate_content(tenant, "track", 1, {"title": "Intro", "duration_s": 61})
    with pytest.raises(SchemaViolation) as caught:
        await registry.validate_content(tenant, "track", 1, {"duration_s": -1, "bpm": 120})
    assert sorted((i.loc, i.type) for i in caught.value.issues) == [
        (("bpm",), "additionalProperties"),
        (("duration_s",), "minimum"),
        (("title",), "required"),
    ]
    assert await registry.validator(tenant, "track", 1) is await registry.validator(
        tenant, "track", 1
    )
    with pytest.raises(SchemaNotFound):
        await registry.validate_content(tenant, "track", 2, {"title": "x"})


async def test_validate_content_joins_the_callers_transaction(
    db: Database, new_tenant: NewTenant
) -> None:
    """As a record's write calls it: inside the caller's tenant transaction, whose connection
    the read of the version joins (it sees what that transaction wrote)."""
    tenant = (await new_tenant("sch")).id
    await SchemaRegistry(db).register(tenant, "track", TRACK)
    registry = SchemaRegistry(db)  # an empty validator cache: the version is read
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            await conn.execute(
                metadata_schemas.insert().values(
                    tenant_id=tenant,
                    name="track",
                    version=2,
                    schema={**TRACK, "required": ["title", "duration_s"]},
                    compatibility="NONE",
                )
            )  # a version only this transaction sees: the read must join it to find it
            with pytest.raises(SchemaViolation) as caught:
                await registry.validate_content(tenant, "track", 2, {"title": "Intro"})
            assert [i.loc for i in caught.value.issues] == [("duration_s",)]
            await conn.rollback()


async def test_a_registered_version_cannot_be_changed(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("sch")).id
    await SchemaRegistry(db).register(tenant, "track", TRACK)
    with tenant_scope(tenant), pytest.raises(Exception, match="immutable"):
        async with db.tenant_transaction() as conn:
            await conn.execute(metadata_schemas.update().values(schema={"type": "object"}))

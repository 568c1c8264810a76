"""Export (GDPR portability): every tenant table, only the tenant's rows, a manifest whose hashes
verify, sealed for the tenant; tampering found; the CLI command."""

from __future__ import annotations

import base64
import json
import os
import tarfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from tenantry.audit import trail_for
from tenantry.cache import CacheManager
from tenantry.cli import app
from tenantry.context import tenant_scope
from tenantry.db.embedded import EmbeddedPostgres
from tenantry.db.engine import Database
from tenantry.db.metadata import SCHEMA
from tenantry.db.migrate import head_revision
from tenantry.db.rls import rls_statements, tenant_tables
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import ConfigError, Conflict, DecryptionError, KeysDestroyed, TenantNotFound
from tenantry.keys import Keyring
from tenantry.lifecycle import ExportStep, LifecycleManager, TenantExporter, open_export
from tenantry.lifecycle import router as export_router
from tenantry.metadata import MetadataManager, MetadataType
from tenantry.metadata.models import EMBEDDING_DIMENSION
from tenantry.security import SecurityManager
from tenantry.sessions import SessionManager
from tenantry.tenants import TenantSettings
from tenantry.workflows import Step, StepContext, WorkflowDefinition, WorkflowManager
from tests.conftest import TOKEN, NewTenant, cli_environment


async def _noop(ctx: StepContext) -> str:
    return "done"


DEFINITION = WorkflowDefinition("export_test_release", (Step("publish", _noop),))


async def _populate(db: Database, tenant: str, marker: str) -> str:
    """Data of ``tenant`` in several managers, ``marker`` in each; the metadata record's id."""
    await TenantSettings(tenant, db).set("export.marker", {"marker": marker})
    record = await MetadataManager(db).create_metadata(
        tenant,
        MetadataType.BUSINESS,
        {"title": f"Contract {marker}", "iban": f"IBAN-{marker}"},
        sensitive_fields=["iban"],
    )
    await WorkflowManager(db).create_workflow(tenant, DEFINITION, {"marker": marker})
    await SessionManager(db, cache=CacheManager()).create_session(tenant, f"user-{marker}")
    return record


def _all_rows(archive: Any) -> dict[str, list[dict[str, Any]]]:
    return {table: list(archive.rows(table)) for table in archive.tables}


async def test_export_holds_every_tenant_table_and_only_the_tenants_rows(
    db: Database, new_tenant: NewTenant, tmp_path: Path
) -> None:
    mine, other = (await new_tenant("exp")).id, (await new_tenant("exp")).id
    record = await _populate(db, mine, "mine-7f3a")
    await _populate(db, other, "other-c91e")
    with tenant_scope(mine):  # an embedding, as the embedder stores it (vector or real[])
        async with db.tenant_transaction() as conn:
            await conn.execute(
                text(
                    f'update "{SCHEMA}".metadata_records set embedding = '
                    f"array_fill(0.25::real, array[{EMBEDDING_DIMENSION}]) where id = :id"
                ),
                {"id": record},
            )
    keyring = Keyring(db)
    steps: list[ExportStep] = []
    lifecycle = LifecycleManager(db, keyring=keyring)
    report = await lifecycle.export_tenant(
        mine, tmp_path / "mine.tar", actor="ops", progress=steps.append
    )
    assert report.rows > 0
    assert report.path.exists()
    assert steps[-1].tables_done == steps[-1].tables_total == len(tenant_tables())

    archive = await open_export(report.path, Keyring(db))  # another keyring: from the database
    assert archive.manifest_sha256 == report.manifest_sha256
    assert set(archive.tables) == {t.name for t in tenant_tables()}
    manifest = archive.manifest
    assert manifest["tenant_id"] == mine
    assert manifest["migration_revision"] == head_revision()
    assert manifest["tenantry_version"]
    rows = _all_rows(archive)
    assert {t: len(r) for t, r in rows.items()} == {t.table: t.rows for t in report.tables}
    assert all(row["tenant_id"] == mine for table in rows.values() for row in table)
    everything = json.dumps(rows)
    assert "mine-7f3a" in everything
    assert other not in everything
    assert "other-c91e" not in everything
    # the archive is sealed: neither tenant's content is in its bytes
    raw = report.path.read_bytes()
    assert b"mine-7f3a" not in raw
    assert b"other-c91e" not in raw

    settings = {r["key"]: r["value"] for r in rows["tenant_settings"]}
    assert settings["export.marker"] == {"marker": "mine-7f3a"}
    assert [r["user_id"] for r in rows["sessions"]] == ["user-mine-7f3a"]
    assert [r["input"] for r in rows["workflows"]] == [{"marker": "mine-7f3a"}]
    # a sealed column stays as stored: a ciphertext that opens with the tenant's keys
    (version,) = [v for v in rows["metadata_versions"] if v["record_id"] == record]
    assert "IBAN-mine-7f3a" not in json.dumps(version)
    sealed = base64.b64decode(version["sealed"])
    plain = await keyring.decrypt(
        mine, sealed, purpose="metadata_versions.sealed", record_id=f"{record}/1"
    )
    assert b"IBAN-mine-7f3a" in plain
    (stored,) = rows["metadata_records"]
    assert stored["embedding"] == [0.25] * EMBEDDING_DIMENSION  # a vector is a list
    assert isinstance(stored["created_at"], str)
    assert datetime.fromisoformat(stored["created_at"]).tzinfo is not None
    # the key material is left out
    assert rows["tenant_keys"]
    assert all(k["wrapped_key"] is None for k in rows["tenant_keys"])
    assert {"name": "wrapped_key", "type": "bytea", "redacted": True} in manifest["files"][
        "tenant_keys.jsonl"
    ]["columns"]

    entries = [e.entry for e in await trail_for(db).audit_log.entries(mine, 0, 1000) if e.entry]
    (entry,) = [e for e in entries if e.action == "tenant.export"]
    assert entry.actor == "ops"
    assert entry.resource == f"export:{report.export_id}"
    assert entry.detail["manifest_sha256"] == report.manifest_sha256
    assert "GDPR" in entry.frameworks


async def test_pages_follow_the_primary_key(
    db: Database, new_tenant: NewTenant, tmp_path: Path
) -> None:
    tenant = (await new_tenant("exp")).id
    settings = TenantSettings(tenant, db)
    for i in range(7):
        await settings.set(f"page.{i}", i)
    report = await TenantExporter(db, page_rows=2).export(tenant, tmp_path / "t.tar")
    archive = await open_export(report.path, Keyring(db))
    keys = [r["key"] for r in archive.rows("tenant_settings")]
    assert keys == sorted(keys)
    assert {f"page.{i}" for i in range(7)} <= set(keys)


def _flip(path: Path, member: str, at: int) -> None:
    """Change one byte of ``member``'s data in the tar at ``path``."""
    with tarfile.open(path) as tar:
        offset = tar.getmember(member).offset_data
    with open(path, "r+b") as f:
        f.seek(offset + at)
        byte = f.read(1)
        f.seek(offset + at)
        f.write(bytes([byte[0] ^ 0x01]))


async def test_a_changed_byte_fails_verification(
    db: Database, new_tenant: NewTenant, tmp_path: Path
) -> None:
    tenant = (await new_tenant("exp")).id
    await _populate(db, tenant, "tamper")
    path = (await TenantExporter(db).export(tenant, tmp_path / "t.tar")).path
    for member, at in (("tenant_settings.jsonl", 40), ("manifest.json", 30)):
        copy = tmp_path / f"copy-{member}.tar"
        copy.write_bytes(path.read_bytes())
        _flip(copy, member, at)
        with pytest.raises(DecryptionError, match="does not open"):
            await open_export(copy, Keyring(db))
    copy = tmp_path / "header.tar"
    copy.write_bytes(path.read_bytes().replace(b'"manifest_sha256": "', b'"manifest_sha256": "0'))
    with pytest.raises(DecryptionError):
        await open_export(copy, Keyring(db))
    await open_export(path, Keyring(db))  # the original verifies


async def test_refusals(db: Database, new_tenant: NewTenant, tmp_path: Path) -> None:
    exporter = TenantExporter(db)
    with pytest.raises(TenantNotFound, match="does not exist"):
        await exporter.export("no-such-tenant", tmp_path / "x.tar")
    tenant = (await new_tenant("exp")).id
    existing = tmp_path / "existing.tar"
    existing.write_bytes(b"keep")
    with pytest.raises(Conflict, match="exists already"):
        await exporter.export(tenant, existing)
    assert existing.read_bytes() == b"keep"
    report = await exporter.export(tenant, tmp_path / "before.tar")
    await SecurityManager(db).destroy_tenant_keys(tenant, actor="ops")
    with pytest.raises(KeysDestroyed, match="cannot be exported"):
        await TenantExporter(db).export(tenant, tmp_path / "after.tar")
    assert not (tmp_path / "after.tar").exists()
    with pytest.raises(KeysDestroyed):  # the earlier export is erased with the keys
        await open_export(report.path, Keyring(db))
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []  # no leftovers


async def test_a_tenant_table_the_code_does_not_declare_is_exported_too(
    runtime: DatabaseRuntime, db: Database, new_tenant: NewTenant, tmp_path: Path
) -> None:
    tenant = (await new_tenant("exp")).id
    name = f"undeclared_{uuid.uuid4().hex[:8]}"
    qualified = f'"{SCHEMA}"."{name}"'
    s = runtime.settings
    engine = create_async_engine(runtime.admin_url, poolclass=NullPool)
    statements = [
        f'CREATE TABLE {qualified} (tenant_id text NOT NULL REFERENCES "{SCHEMA}".tenants(id), '
        "n integer NOT NULL, note text, PRIMARY KEY (tenant_id, n))",
        f"ALTER TABLE {qualified} OWNER TO {s.owner_role}",
        f"GRANT SELECT, INSERT ON {qualified} TO {s.app_role}",
    ]
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
        with pytest.raises(ConfigError, match=name):  # no RLS yet: refused, not read
            await TenantExporter(db).export(tenant, tmp_path / "refused.tar")
        async with engine.begin() as conn:
            for statement in rls_statements(name):
                await conn.execute(text(statement))
            await conn.execute(text(f"SET LOCAL tenantry.tenant_id = '{tenant}'"))
            await conn.execute(text(f"INSERT INTO {qualified} VALUES ('{tenant}', 1, 'kept')"))
        report = await TenantExporter(db).export(tenant, tmp_path / "t.tar")
        (table,) = [t for t in report.tables if t.table == name]
        assert not table.declared
        assert table.rows == 1
        archive = await open_export(report.path, Keyring(db))
        assert list(archive.rows(name)) == [{"tenant_id": tenant, "n": 1, "note": "kept"}]
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {qualified}"))
        await engine.dispose()


@pytest.fixture(scope="module")
async def cli_env(embedded_server: EmbeddedPostgres) -> dict[str, str]:
    return await cli_environment(embedded_server, "export")


def test_cli_exports_a_tenant(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = cli_env
    runner = CliRunner()
    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    result = runner.invoke(app, ["tenants", "create", tenant, "--name", "Label"], env=env)
    assert result.exit_code == 0, result.output
    out = tmp_path / "label.tar"
    result = runner.invoke(app, ["tenants", "export", tenant, "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert f"exported tenant {tenant!r}" in result.output
    assert "manifest sha256" in result.output
    assert out.exists()
    result = runner.invoke(app, ["tenants", "export", tenant, "--out", str(out)], env=env)
    assert result.exit_code == 1
    assert "exists already" in result.output
    missing = ["tenants", "export", "no-such-tenant", "--out", str(tmp_path / "none.tar")]
    result = runner.invoke(app, missing, env=env)
    assert result.exit_code == 1
    assert "tenant 'no-such-tenant' does not exist" in result.output


async def test_export_over_http(
    client: httpx.AsyncClient, db: Database, new_tenant: NewTenant, tmp_path: Path
) -> None:
    tenant = (await new_tenant("exp")).id
    await TenantSettings(tenant, db).set("export.marker", "over-http")
    answer = await client.post(f"/tenants/{tenant}/export", headers=TOKEN)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-tar"
    path = tmp_path / "http.tar"
    path.write_bytes(answer.content)
    archive = await open_export(path, Keyring(db))
    assert archive.manifest_sha256 == answer.headers["x-tenantry-manifest-sha256"]
    assert archive.export_id == answer.headers["x-tenantry-export-id"]
    assert [r["value"] for r in archive.rows("tenant_settings") if r["key"] == "export.marker"] == [
        "over-http"
    ]
    missing = await client.post("/tenants/no-such-tenant/export", headers=TOKEN)
    assert missing.status_code == 404
    export_router._running.append("another")  # an export under way in this process
    try:
        busy = await client.post(f"/tenants/{tenant}/export", headers=TOKEN)
    finally:
        export_router._running.remove("another")
    assert busy.status_code == 429
    assert busy.headers["retry-after"] == "5"
    assert export_router._running == []

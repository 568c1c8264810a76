"""Tampering with audit rows directly in PostgreSQL (as the admin) is caught, to the entry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from tenantry.audit.manager import AuditLog
from tenantry.audit.notes import CheckpointSigner, checkpoint_body
from tenantry.audit.schemas import AuditEntry
from tenantry.audit.verifier import verify_export
from tenantry.cli.audit import audit_app
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tests.conftest import NewTenant

SIGNER = CheckpointSigner.generate(quantum=True)
KEYS = [k.encode() for k in SIGNER.verifiers()]


@pytest.fixture(scope="module")
async def admin(runtime: DatabaseRuntime) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(runtime.admin_url, poolclass=NullPool)
    yield engine
    await engine.dispose()


async def as_admin(engine: AsyncEngine, tenant: str, *statements: str) -> None:
    """Run statements as the admin, with the tenant context (FORCE RLS applies to the owner;
    a superuser bypasses RLS, so every statement also names the tenant)."""
    async with engine.begin() as conn:
        await conn.execute(text("select set_config('tenantry.tenant_id', :t, true)"), {"t": tenant})
        for statement in statements:
            await conn.execute(text(statement), {"t": tenant})


async def filled(db: Database, new_tenant: NewTenant) -> tuple[AuditLog, str]:
    audit = AuditLog(db, signer=SIGNER)
    tenant = (await new_tenant("tamper")).id
    entries = [AuditEntry(actor=f"u{i}", action="data:export", resource=f"r{i}") for i in range(12)]
    await audit.append_many(tenant, entries[:8])
    await audit.checkpoint(tenant)
    await audit.append_many(tenant, entries[8:])
    await audit.checkpoint(tenant)
    assert (await audit.verify(tenant)).ok
    return audit, tenant


async def test_changed_entry(db: Database, new_tenant: NewTenant, admin: AsyncEngine) -> None:
    audit, tenant = await filled(db, new_tenant)
    await as_admin(
        admin,
        tenant,
        "UPDATE tenantry.audit_entries SET entry = convert_to("
        "replace(convert_from(entry, 'UTF8'), '\"u5\"', '\"mallory\"'), 'UTF8')"
        " WHERE tenant_id = :t AND seq = 5",
    )
    report = await audit.verify(tenant)
    assert report.bad_indices == [5]
    assert [p.kind for p in report.problems] == ["payload"]


async def test_changed_entry_and_leaf_hash(
    db: Database, new_tenant: NewTenant, admin: AsyncEngine
) -> None:
    audit, tenant = await filled(db, new_tenant)
    await as_admin(
        admin,
        tenant,
        "UPDATE tenantry.audit_entries SET entry = 'x',"
        " leaf_hash = sha256('\\x00'::bytea || 'x'::bytea) WHERE tenant_id = :t AND seq = 9",
    )
    report = await audit.verify(tenant)
    assert report.bad_indices == [9]
    assert {p.kind for p in report.problems} == {"leaf", "payload"}


async def test_deleted_entry(db: Database, new_tenant: NewTenant, admin: AsyncEngine) -> None:
    audit, tenant = await filled(db, new_tenant)
    await as_admin(
        admin, tenant, "DELETE FROM tenantry.audit_entries WHERE tenant_id = :t AND seq = 3"
    )
    report = await audit.verify(tenant)
    assert report.bad_indices == [3]
    assert report.problems[0].kind == "missing"


async def test_deleted_tail(db: Database, new_tenant: NewTenant, admin: AsyncEngine) -> None:
    audit, tenant = await filled(db, new_tenant)
    await as_admin(
        admin,
        tenant,
        "DELETE FROM tenantry.audit_entries WHERE tenant_id = :t AND seq >= 10",
        "DELETE FROM tenantry.audit_nodes WHERE tenant_id = :t AND level = 0 AND idx >= 10",
    )
    report = await audit.verify(tenant)
    assert not report.ok
    assert report.bad_indices == [10]


async def test_reordered_entries(db: Database, new_tenant: NewTenant, admin: AsyncEngine) -> None:
    audit, tenant = await filled(db, new_tenant)
    await as_admin(
        admin,
        tenant,
        "UPDATE tenantry.audit_entries SET seq = -1 WHERE tenant_id = :t AND seq = 6",
        "UPDATE tenantry.audit_entries SET seq = 6 WHERE tenant_id = :t AND seq = 7",
        "UPDATE tenantry.audit_entries SET seq = 7 WHERE tenant_id = :t AND seq = -1",
    )
    report = await audit.verify(tenant)
    assert report.bad_indices == [6, 7]


async def test_rewritten_tree_fails_the_signed_root(
    db: Database, new_tenant: NewTenant, admin: AsyncEngine
) -> None:
    audit, tenant = await filled(db, new_tenant)
    forged = "sha256('\\x00'::bytea || 'x'::bytea)"
    await as_admin(
        admin,
        tenant,
        f"UPDATE tenantry.audit_entries SET entry = 'x', leaf_hash = {forged}"
        " WHERE tenant_id = :t AND seq = 2",
        f"UPDATE tenantry.audit_nodes SET hash = {forged}"
        " WHERE tenant_id = :t AND level = 0 AND idx = 2",
    )
    report = await audit.verify(tenant)
    assert [p.kind for p in report.problems] == ["root", "root"]
    assert "0..7" in report.problems[0].message


async def test_forged_checkpoint(db: Database, new_tenant: NewTenant, admin: AsyncEngine) -> None:
    audit, tenant = await filled(db, new_tenant)
    rogue = CheckpointSigner.generate(quantum=True)
    root = await audit.root(tenant, 5)
    note = rogue.sign(checkpoint_body(audit.origin(tenant), 5, root))
    await as_admin(
        admin,
        tenant,
        "INSERT INTO tenantry.audit_checkpoints (tenant_id, tree_size, root_hash, note)"
        f" VALUES ('{tenant}', 5, '\\x{root.hex()}', '{note}')",
    )
    data = await audit.export(tenant)
    report = verify_export(data, keys=KEYS)
    assert [(p.kind, p.index) for p in report.problems] == [("signature", None)]
    assert "checkpoint 5" in report.problems[0].message
    # A signed note whose text was edited (another root) fails its signature too.
    cp = data["checkpoints"][-1]
    lines = cp["note"].split("\n")
    lines[2] = lines[2][:-4] + ("AAA=" if lines[2][-4:] != "AAA=" else "BBB=")
    cp["note"] = "\n".join(lines)
    assert any(p.kind == "signature" for p in verify_export(data, keys=KEYS).problems)


async def test_cli_verifies_a_file(
    db: Database, new_tenant: NewTenant, tmp_path: pytest.TempPathFactory
) -> None:
    audit, tenant = await filled(db, new_tenant)
    data = await audit.export(tenant)
    path = tmp_path / "export.json"  # type: ignore[operator]
    path.write_text(json.dumps(data))
    runner = CliRunner()
    result = runner.invoke(audit_app, ["verify", "--file", str(path), "--key", KEYS[0]])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"OK: tenant {tenant}, 12 entries")
    data["entries"][4]["payload"] = data["entries"][5]["payload"]
    path.write_text(json.dumps(data))
    result = runner.invoke(audit_app, ["verify", "--file", str(path)])
    assert result.exit_code == 1
    assert "[payload] entry 4" in result.output

"""A key change and its audit entry commit together or not at all (DESIGN invariant 7).

Key changes are recorded on the platform's tree, inside the transaction that changes the keys.
The audit write is made to fail for real (``refusal.py``: a trigger on the queue, created on the
test database); then the keys must be as they were, in the database and in this process.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tenantry.audit.manager import AuditLog
from tenantry.audit.notes import CheckpointSigner
from tenantry.audit.schemas import AuditEntry
from tenantry.cli import app
from tenantry.context import PLATFORM_TENANT
from tenantry.db.embedded import EmbeddedPostgres
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import (
    AuditUnavailable,
    Conflict,
    KeysDestroyed,
    SettingNotFound,
    TenantContextError,
)
from tenantry.keys import KeyChange, crypto
from tenantry.keys.core import key_version
from tenantry.keys.manager import KeyInfo, Keyring
from tenantry.keys.provider import FileKeyProvider, provider_from_environment
from tenantry.levels import SecurityLevel
from tenantry.security.manager import KeyringAuditCipher, SecurityManager
from tenantry.tenants import TenantRegistry, TenantSettings
from tests.audit.refusal import REFUSED, allow, refuse, refusing
from tests.conftest import NewTenant, cli_environment, embedded_settings
from tests.keys.test_root import (
    Fresh,
    count,
    deployed,
    file_versions,
    live_keks,
    open_fresh,
    tenant,
)

ACTOR = "ops:ada"
Row = tuple[str, str, str, str, dict[str, Any]]


@pytest.fixture
def security(db: Database, tmp_path: Path) -> SecurityManager:
    keyring = Keyring(db, provider_from_environment())  # the tests' one root key
    signer = CheckpointSigner.from_data_dir(tmp_path)
    audit_log = AuditLog(db, signer=signer, cipher=KeyringAuditCipher(keyring))
    return SecurityManager(db, keyring=keyring, audit_log=audit_log)


def rows(entries: list[AuditEntry]) -> list[Row]:
    return [(e.action, e.resource, e.actor, e.outcome, e.detail) for e in entries]


async def entries_since(audit: AuditLog, tenant: str, start: int) -> list[AuditEntry]:
    stored = await audit.entries(tenant, start=start, limit=1000)
    assert all(s.entry is not None for s in stored)
    return [s.entry for s in stored if s.entry is not None]


async def live(keyring: Keyring, tenant: str) -> list[KeyInfo]:
    return await keyring.keys(tenant)


async def test_a_refused_rotation_entry_leaves_the_keys_as_they_were(
    security: SecurityManager, runtime: DatabaseRuntime, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("kaud")).id
    await security.keyring.load(tenant)
    before = await live(security.keyring, tenant)
    start = await security.audit_log.size(PLATFORM_TENANT)

    async with refusing(runtime.admin_url):
        with pytest.raises(AuditUnavailable) as refused:
            await security.rotate_keys(tenant, actor=ACTOR)
    assert refused.value.detail == (
        "the audit log of tenant 'platform' could not take the change's entry, so the change "
        "was not made"
    )
    assert REFUSED not in refused.value.detail  # the database's text stays in the log
    assert await live(security.keyring, tenant) == before
    sealed = await security.encrypt(tenant, b"stems", purpose="tracks.notes", record_id="t-1")
    assert key_version(sealed) == 1  # this process did not cache a version that does not exist
    assert await security.audit_log.size(PLATFORM_TENANT) == start

    assert await security.rotate_keys(tenant, actor=ACTOR) == 2
    assert rows(await entries_since(security.audit_log, PLATFORM_TENANT, start)) == [
        ("keys.rotate", f"tenant:{tenant}", ACTOR, "success", {"version": 2})
    ]
    assert (await security.audit_log.verify(PLATFORM_TENANT)).ok


async def test_a_refused_level_entry_changes_neither_the_level_nor_the_keys(
    security: SecurityManager, runtime: DatabaseRuntime, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("kaud")).id
    await security.keyring.load(tenant)  # a classic KEK: raising the level to quantum rotates
    before = await live(security.keyring, tenant)
    start = await security.audit_log.size(PLATFORM_TENANT)

    async with refusing(runtime.admin_url):
        with pytest.raises(AuditUnavailable):
            await security.set_security_level(tenant, "quantum", actor=ACTOR)
    assert await live(security.keyring, tenant) == before
    with pytest.raises(SettingNotFound):  # the setting was in the same transaction
        await TenantSettings(tenant, db).get("security_level")
    assert await security.audit_log.size(tenant) == 0  # and so was its own entry
    assert await security.audit_log.size(PLATFORM_TENANT) == start

    assert await security.set_security_level(tenant, "quantum", actor=ACTOR) is (
        SecurityLevel.QUANTUM
    )
    after = await live(security.keyring, tenant)
    assert [k.algorithm for k in after if k.purpose == "kek"] == [
        crypto.ALG_ROOT,
        crypto.ALG_HYBRID,
    ]
    assert rows(await entries_since(security.audit_log, PLATFORM_TENANT, start)) == [
        ("keys.level", f"tenant:{tenant}", ACTOR, "success", {"level": "quantum", "rotate": True})
    ]
    assert rows(await entries_since(security.audit_log, tenant, 0)) == [
        ("setting.set", "setting:security_level", ACTOR, "success", {})
    ]
    assert (await security.audit_log.verify(PLATFORM_TENANT)).ok
    assert (await security.audit_log.verify(tenant)).ok


async def test_a_refused_destruction_entry_leaves_the_keys_alive(
    security: SecurityManager, runtime: DatabaseRuntime, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("kaud")).id
    sealed = await security.encrypt(tenant, b"split 60/40", purpose="c.terms", record_id="c-1")
    start = await security.audit_log.size(PLATFORM_TENANT)

    async with refusing(runtime.admin_url):
        with pytest.raises(AuditUnavailable):
            await security.destroy_tenant_keys(tenant, actor=ACTOR)
    assert all(k.destroyed_at is None for k in await live(security.keyring, tenant))
    elsewhere = Keyring(db, provider_from_environment())  # reads the database afresh
    for keyring in (security.keyring, elsewhere):
        opened = await keyring.decrypt(tenant, sealed, purpose="c.terms", record_id="c-1")
        assert opened == b"split 60/40"
    assert await security.audit_log.size(PLATFORM_TENANT) == start

    await security.destroy_tenant_keys(tenant, actor=ACTOR)
    for keyring in (security.keyring, Keyring(db, provider_from_environment())):
        with pytest.raises(KeysDestroyed):
            await keyring.decrypt(tenant, sealed, purpose="c.terms", record_id="c-1")
    [entry] = await entries_since(security.audit_log, PLATFORM_TENANT, start)
    assert rows([entry]) == [("keys.destroy", f"tenant:{tenant}", ACTOR, "success", {})]
    assert entry.frameworks == ("GDPR",)
    assert (await security.audit_log.verify(PLATFORM_TENANT)).ok


async def test_a_refused_rewrap_entry_leaves_the_data_keys_wrapped_as_they_were(
    security: SecurityManager, runtime: DatabaseRuntime, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("kaud")).id
    await security.keyring.load(tenant)
    await security.rotate_keys(tenant)
    before = await live(security.keyring, tenant)
    start = await security.audit_log.size(PLATFORM_TENANT)
    async with refusing(runtime.admin_url):
        with pytest.raises(AuditUnavailable):
            await security.rewrap_keys(tenant, actor=ACTOR)
    assert await live(security.keyring, tenant) == before
    assert [k.kek_version for k in before if k.purpose == "data"] == [1, 2]

    assert await security.rewrap_keys(tenant, actor=ACTOR) == 1
    assert await security.rewrap_keys(tenant, actor=ACTOR) == 0  # nothing changed: no entry
    assert rows(await entries_since(security.audit_log, PLATFORM_TENANT, start)) == [
        ("keys.rewrap", f"tenant:{tenant}", ACTOR, "success", {"rewrapped": 1})
    ]


async def test_the_platforms_own_keys(security: SecurityManager) -> None:
    """Its key changes are recorded on its own tree, in its own key transaction."""
    start = await security.audit_log.size(PLATFORM_TENANT)
    version = await security.rotate_keys(PLATFORM_TENANT, actor=ACTOR)
    [entry] = await entries_since(security.audit_log, PLATFORM_TENANT, start)
    assert rows([entry]) == [
        ("keys.rotate", "tenant:platform", ACTOR, "success", {"version": version})
    ]
    with pytest.raises(Conflict, match="not destroyed"):
        await security.destroy_tenant_keys(PLATFORM_TENANT, actor=ACTOR)
    assert all(k.destroyed_at is None for k in await live(security.keyring, PLATFORM_TENANT))
    assert (await security.audit_log.verify(PLATFORM_TENANT)).ok


async def test_loading_the_keys_a_key_transaction_holds_is_refused_not_a_hang(
    db: Database, new_tenant: NewTenant
) -> None:
    """Inside a tenant's key transaction its key lock is held: a load of its keys (by any
    keyring of the process) would wait for it forever."""
    tenant = (await new_tenant("kaud")).id
    keyring, other = Keyring(db, provider_from_environment()), Keyring(db)
    await keyring.load(tenant)

    async def loads_again(change: KeyChange) -> None:
        await other.load(tenant)

    with pytest.raises(TenantContextError, match="being changed in this transaction"):
        await keyring.rotate(tenant, record=loads_again)
    assert [k.version for k in await keyring.keys(tenant) if k.purpose == "data"] == [1]


# -- the root key: a database of its own (a root rotation visits every tenant) -----------------


@pytest.fixture
async def fresh(embedded_server: EmbeddedPostgres) -> AsyncIterator[Fresh]:
    async for pair in open_fresh(await embedded_settings(embedded_server, "key_audit_root")):
        yield pair


async def test_a_root_rotation_moves_no_kek_whose_entry_cannot_be_written(
    fresh: Fresh, tmp_path: Path
) -> None:
    runtime, db = fresh
    path = tmp_path / "root.key"
    keyring = deployed(db, FileKeyProvider.create(path))
    security = SecurityManager(db)  # the database's trail, sealed by that keyring
    for _ in range(2):
        await keyring.load(await tenant(db))
    before = await live_keks(db)  # the two tenants' and the platform's
    everyone = len(await TenantRegistry(db).list(limit=1000))
    start = await security.audit_log.size(PLATFORM_TENANT)

    async with refusing(runtime.admin_url):  # "started": no new version
        with pytest.raises(AuditUnavailable):
            await security.rotate_root_key(actor=ACTOR)
    assert file_versions(path) == [1]
    async with refusing(runtime.admin_url, after=1):  # the first re-wrap's
        with pytest.raises(AuditUnavailable):
            await security.rotate_root_key(actor=ACTOR)
    assert file_versions(path) == [1, 2]
    assert await live_keks(db) == before  # that tenant's re-wrap rolled back; the run stopped

    done = await security.rotate_root_key(resume=True, retire=True, actor=ACTOR)
    assert (done.version, done.rewrapped, done.retired) == (2, count(before), (1,))
    assert await live_keks(db) == {t: [2] * len(v) for t, v in before.items()}
    assert rows(await entries_since(security.audit_log, PLATFORM_TENANT, start)) == [
        ("keys.rotate_root", "root-key", ACTOR, "started", {"from_version": 1}),
        *[  # tenants are visited in id order
            ("keys.rewrap_root", f"tenant:{t}", ACTOR, "success", {"version": 2, "rewrapped": 1})
            for t in sorted(before)
        ],
        (
            "keys.rotate_root",
            "root-key",
            ACTOR,
            "success",
            {"version": 2, "tenants": everyone, "rewrapped": count(before), "resume": True},
        ),
        ("keys.retire_root", "root-key", ACTOR, "success", {"retired": [1]}),
    ]
    assert (await security.audit_log.verify(PLATFORM_TENANT)).ok


# -- the command ---------------------------------------------------------------------------------


@pytest.fixture
async def cli_env(embedded_server: EmbeddedPostgres, tmp_path: Path) -> dict[str, str]:
    """A database and a root key file of this test's own, for the command."""
    return await cli_environment(embedded_server, "key_audit_cli", tmp_path / "root.key")


def test_the_commands_say_that_a_key_change_was_not_made(
    cli_env: dict[str, str], embedded_server: EmbeddedPostgres
) -> None:
    runner = CliRunner()
    tenant_id = f"kaud-{uuid.uuid4().hex[:8]}"
    admin_url = embedded_server.url(cli_env["TENANTRY_EMBEDDED_DATABASE"])

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), env=cli_env)
        return result.exit_code, result.output.strip()

    assert run("tenants", "create", tenant_id, "--name", "K")[0] == 0
    assert run("keys", "rotate", "--tenant", tenant_id) == (  # its first keys
        0,
        f"tenant {tenant_id}: data key version 1 is current",
    )
    refused = (
        "error: the audit log of tenant 'platform' could not take the change's entry, so the "
        "change was not made"
    )
    trigger = asyncio.run(refuse(admin_url))
    try:
        for command in (
            ("keys", "rotate", "--tenant", tenant_id),
            ("keys", "level", "--tenant", tenant_id, "quantum"),
            ("keys", "rotate-root"),
        ):
            code, out = run(*command)  # (the database's text is in the debug log only)
            assert (code, out.splitlines()[-1]) == (1, refused), out
            assert "Traceback" not in out
    finally:
        asyncio.run(allow(admin_url, trigger))
    assert run("keys", "level", "--tenant", tenant_id) == (
        0,
        f"tenant {tenant_id}: security level high",
    )
    assert run("keys", "rotate", "--tenant", tenant_id) == (
        0,
        f"tenant {tenant_id}: data key version 2 is current",
    )
    code, out = run("audit", "verify", "--tenant", "platform")
    assert code == 0, out

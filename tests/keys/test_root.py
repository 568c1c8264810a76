"""Root key rotation: versions in the key file, every KEK re-wrapped, old versions retired.

A root rotation visits every tenant of the database, so each test here has a database of its
own (the worker's shared one holds other tests' tenants, wrapped by other root keys).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import stat
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from tenantry.audit.trail import AuditTrail, trail_for, use_trail
from tenantry.cli import app
from tenantry.config import Settings
from tenantry.context import tenant_scope
from tenantry.db.embedded import EmbeddedPostgres
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import (
    ConfigError,
    Conflict,
    DecryptionError,
    KeysDestroyed,
    TenantContextError,
)
from tenantry.keys import crypto
from tenantry.keys.manager import Keyring
from tenantry.keys.models import tenant_keys
from tenantry.keys.provider import FileKeyProvider, KeyProvider
from tenantry.tenants import TenantRegistry
from tests.conftest import embedded_settings, server_settings, started_runtime

Fresh = tuple[DatabaseRuntime, Database]


async def open_fresh(settings: Settings) -> AsyncIterator[Fresh]:
    runtime = await started_runtime(settings)
    database = runtime.open_database()
    yield runtime, database
    await database.dispose()
    await runtime.stop()


def deployed(db: Database, provider: KeyProvider) -> Keyring:
    """The keyring of ``db`` with ``provider`` as its root key, also for the managers' audit
    entries (one root key per deployment, as the app wires it)."""
    keyring = Keyring(db, provider)
    use_trail(db, AuditTrail.for_database(db, keyring))
    return keyring


@pytest.fixture(params=["embedded", "server"])
async def fresh(
    request: pytest.FixtureRequest, embedded_server: EmbeddedPostgres
) -> AsyncIterator[Fresh]:
    """A new, migrated database on each kind of PostgreSQL."""
    if request.param == "embedded":
        settings = await embedded_settings(embedded_server, "keys_root")
    else:
        settings = await server_settings("keys_root")
    async for pair in open_fresh(settings):
        yield pair


@pytest.fixture
async def fresh_db(embedded_server: EmbeddedPostgres) -> AsyncIterator[Database]:
    """A new, migrated database on the embedded PostgreSQL."""
    async for _, database in open_fresh(await embedded_settings(embedded_server, "keys_root")):
        yield database


async def tenant(db: Database, prefix: str = "root") -> str:
    tenant_id = f"{prefix}-{uuid.uuid4().hex[:10]}"
    await TenantRegistry(db).create(tenant_id, tenant_id)
    return tenant_id


async def kek_rows(db: Database, tenant_id: str) -> list[dict[str, object]]:
    with tenant_scope(tenant_id):
        async with db.tenant_transaction() as conn:
            query = tenant_keys.select().where(tenant_keys.c.purpose == "kek")
            rows = await conn.execute(query.order_by(tenant_keys.c.version))
            return [dict(r) for r in rows.mappings()]


async def live_keks(db: Database) -> dict[str, list[int]]:
    """Every tenant's live KEKs' root key versions (the managers' audit entries make keys too:
    the platform's, at least)."""
    found = {}
    for registered in await TenantRegistry(db).list(limit=1000):
        rows = await kek_rows(db, registered.id)
        versions = [int(r["root_key_version"]) for r in rows if r["wrapped_key"] is not None]
        if versions:
            found[registered.id] = versions
    return found


def count(keks: dict[str, list[int]]) -> int:
    return sum(map(len, keks.values()))


def file_versions(path: Path) -> list[int]:
    lines = path.read_text().splitlines()
    assert lines[0] == "tenantry-root-key v2"
    return [int(line.split()[0]) for line in lines[1:]]


async def test_rotate_root_rewraps_every_kek_then_retires(fresh: Fresh, tmp_path: Path) -> None:
    _, db = fresh
    path = tmp_path / "root.key"
    keyring = deployed(db, FileKeyProvider.create(path))
    classic, hybrid, shredded, keyless = [await tenant(db) for _ in range(4)]
    await keyring.load(hybrid, quantum=True)
    blobs = {
        t: await keyring.encrypt(t, t.encode(), purpose="p", record_id="r")
        for t in (classic, hybrid)
    }
    await keyring.rotate(classic)  # two KEKs
    await keyring.load(shredded)
    await keyring.destroy_tenant_keys(shredded)
    assert await keyring.retire_root() == ()  # one version: nothing to retire
    before = {t: await kek_rows(db, t) for t in (classic, hybrid)}
    assert {r["root_key_version"] for rows in before.values() for r in rows} == {1}
    old_file = path.read_bytes()
    live = await live_keks(db)
    assert count(live) >= 3  # the classic tenant's two, the hybrid one's, the platform's

    seen: list[tuple[int, int]] = []
    done = await keyring.rotate_root(progress=lambda d, t: seen.append((d, t)))
    everyone = len(await TenantRegistry(db).list(limit=1000))  # with the 'platform' tenant
    assert (done.version, done.tenants, done.rewrapped, done.retired) == (
        2,
        everyone,
        count(live),
        (),
    )
    assert {v for versions in (await live_keks(db)).values() for v in versions} == {2}
    assert seen == [(n, everyone) for n in range(1, everyone + 1)]
    assert file_versions(path) == [1, 2]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for t, rows in before.items():
        after = await kek_rows(db, t)
        assert [r["root_key_version"] for r in after] == [2] * len(rows)
        assert [r["algorithm"] for r in after] == [r["algorithm"] for r in rows]
        assert all(a["wrapped_key"] != b["wrapped_key"] for a, b in zip(after, rows, strict=True))
    assert [r["root_key_version"] for r in await kek_rows(db, keyless)] == []
    shredded_rows = await kek_rows(db, shredded)  # destroyed keys stay destroyed, untouched
    assert [(r["root_key_version"], r["wrapped_key"]) for r in shredded_rows] == [(1, None)]

    for reader in (Keyring(db, FileKeyProvider.load(path)), keyring):
        for t, blob in blobs.items():
            assert await reader.decrypt(t, blob, purpose="p", record_id="r") == t.encode()
        with pytest.raises(KeysDestroyed):
            await reader.encrypt(shredded, b"x", purpose="p", record_id="r")
    stale_copy = tmp_path / "old.key"  # a backup of the key file from before the rotation
    stale_copy.write_bytes(old_file)
    with pytest.raises(DecryptionError, match="root key version 2 is not in"):
        await Keyring(db, FileKeyProvider.load(stale_copy)).load(classic)

    assert await keyring.retire_root() == (1,)
    assert file_versions(path) == [2]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for t, blob in blobs.items():
        assert (
            await Keyring(db, FileKeyProvider.load(path)).decrypt(
                t, blob, purpose="p", record_id="r"
            )
            == t.encode()
        )
    # a backup of tenant_keys from before the rotation cannot be unwrapped any more
    for t, rows in before.items():
        for row in rows:
            with pytest.raises(DecryptionError, match="root key version 1 is not in"):
                await keyring.hierarchy.unwrap_kek(t, row)  # type: ignore[arg-type]


async def test_retiring_is_refused_while_a_kek_uses_an_old_version(
    fresh_db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "root.key"
    keyring = deployed(fresh_db, FileKeyProvider.create(path))
    tenants = [await tenant(fresh_db) for _ in range(4)]
    blobs = {t: await keyring.encrypt(t, b"x", purpose="p", record_id="r") for t in tenants}
    assert await keyring.provider.add_version() == 2  # type: ignore[attr-defined]
    unchanged = path.read_bytes()  # an interrupted rotation: version 2, no KEK re-wrapped
    live = await live_keks(fresh_db)
    assert set(tenants) <= set(live)
    with pytest.raises(Conflict) as refused:
        await keyring.retire_root()
    assert refused.value.detail.startswith(
        f"cannot retire root key version(s) 1: {len(live)} tenant(s) still have KEKs wrapped by "
        "version(s) 1 (e.g. "
    )
    assert "rotate-root --resume" in refused.value.detail
    assert path.read_bytes() == unchanged
    done = await keyring.rotate_root(resume=True, retire=True)
    assert (done.version, done.rewrapped, done.retired) == (2, count(live), (1,))
    assert file_versions(path) == [2]
    fresh = Keyring(fresh_db, FileKeyProvider.load(path))
    for t, blob in blobs.items():
        assert await fresh.decrypt(t, blob, purpose="p", record_id="r") == b"x"
    again = await keyring.rotate_root(resume=True)  # idempotent
    assert (again.version, again.rewrapped) == (2, 0)


async def test_other_processes_follow_the_rotated_file(fresh_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    here = deployed(fresh_db, FileKeyProvider.create(path))
    there = Keyring(fresh_db, FileKeyProvider.load(path))  # another process, same file
    early = await tenant(fresh_db)
    blob = await here.encrypt(early, b"x", purpose="p", record_id="r")
    await here.rotate_root()
    late = await tenant(fresh_db)
    await there.load(late)  # wraps under the newest version it finds in the file
    assert [r["root_key_version"] for r in await kek_rows(fresh_db, late)] == [2]
    assert await there.decrypt(early, blob, purpose="p", record_id="r") == b"x"
    assert await here.retire_root() == (1,)
    # concurrent rotations on one machine keep every version (the lock file)
    first, second = FileKeyProvider.load(path), FileKeyProvider.load(path)
    made = await asyncio.gather(first.add_version(), second.add_version())
    assert sorted(made) == [3, 4]
    assert file_versions(path) == [2, 3, 4]


async def test_listening_processes_forget_retired_versions(
    fresh_db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "root.key"
    here = deployed(fresh_db, FileKeyProvider.create(path))
    other = Database(fresh_db.url, pool_size=1)
    there_provider = FileKeyProvider.load(path)
    there = Keyring(other, there_provider)
    try:
        await tenant(fresh_db)
        await here.rotate_root()
        assert await there_provider.versions() == (1, 2)  # re-reads the changed file
        async with there.listening():
            assert await here.retire_root() == (1,)
            deadline = asyncio.get_running_loop().time() + 10
            while there_provider.held != (2,):  # the "root" signal made it re-read the file
                assert asyncio.get_running_loop().time() < deadline, there_provider.held
                await asyncio.sleep(0.01)
    finally:
        await other.dispose()


async def test_rotate_root_needs_no_tenant_scope(fresh_db: Database, tmp_path: Path) -> None:
    keyring = deployed(fresh_db, FileKeyProvider.create(tmp_path / "root.key"))
    t = await tenant(fresh_db)
    with tenant_scope(t), pytest.raises(TenantContextError, match="spans every tenant"):
        await keyring.rotate_root()
    assert file_versions(tmp_path / "root.key") == [1]


class KmsLikeProvider:
    """Only :class:`KeyProvider`: versions are made in the "KMS", not by tenantry."""

    def __init__(self) -> None:
        self._keys = {1: crypto.new_key()}

    @property
    def key_id(self) -> str:
        return "kms:test"

    def rotate_in_the_kms(self) -> None:
        self._keys[max(self._keys) + 1] = crypto.new_key()

    async def versions(self) -> Sequence[int]:
        return sorted(self._keys)

    async def wrap(self, plaintext_key: bytes, context: bytes, *, version: int) -> bytes:
        return crypto.aead_wrap(self._keys[version], plaintext_key, context)

    async def unwrap(self, wrapped: bytes, context: bytes, *, version: int) -> bytes:
        return crypto.aead_unwrap(self._keys[version], wrapped, context, what="kms key")


async def test_a_kms_provider_rotates_in_its_store(fresh_db: Database) -> None:
    kms = KmsLikeProvider()
    keyring = deployed(fresh_db, kms)
    t = await tenant(fresh_db)
    blob = await keyring.encrypt(t, b"x", purpose="p", record_id="r")
    with pytest.raises(ConfigError, match="cannot add a version itself"):
        await keyring.rotate_root()
    with pytest.raises(ConfigError, match="cannot wrap hybrid"):
        await keyring.load(await tenant(fresh_db), quantum=True)
    kms.rotate_in_the_kms()
    live = await live_keks(fresh_db)
    done = await keyring.rotate_root(resume=True)
    assert (done.version, done.rewrapped) == (2, count(live))
    assert [r["root_key_version"] for r in await kek_rows(fresh_db, t)] == [2]
    assert await Keyring(fresh_db, kms).decrypt(t, blob, purpose="p", record_id="r") == b"x"
    with pytest.raises(ConfigError, match="cannot retire versions itself"):
        await keyring.retire_root()


MIGRATED_TO_0004 = """
insert into tenantry.tenant_keys (tenant_id, purpose, version, algorithm, wrapped_key, kek_version)
values (:tenant, 'kek', 1, :alg_kek, :kek, null), (:tenant, 'data', 1, :alg_data, :data, 1)
"""


async def test_keys_from_before_versions_keep_working(
    embedded_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    """A first-format key file and KEK rows written before migration 0005."""
    from alembic import command  # noqa: PLC0415

    from tenantry.db.bootstrap import ensure_roles_and_schema, quote_ident  # noqa: PLC0415
    from tenantry.db.migrate import alembic_config  # noqa: PLC0415

    settings = await embedded_settings(embedded_server, "keys_root")
    runtime = DatabaseRuntime(settings)
    await runtime.start()
    engine = create_async_engine(runtime.admin_url, poolclass=NullPool)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await ensure_roles_and_schema(
            conn, owner=settings.owner_role, app=settings.app_role, app_password=None
        )
    async with engine.begin() as conn:
        await conn.execute(text(f"SET LOCAL ROLE {quote_ident(settings.owner_role)}"))
        await conn.run_sync(
            lambda sync: command.upgrade(
                alembic_config(connection=sync, app_role=settings.app_role), "0004"
            )
        )
    await engine.dispose()

    secret = os.urandom(32)
    legacy = tmp_path / "root.key"
    legacy.write_text(f"tenantry-root-key v1\n{base64.b64encode(secret).decode()}\n")
    legacy.chmod(0o600)
    provider = FileKeyProvider.load(legacy)
    assert provider.key_id == FileKeyProvider(secret).key_id
    database = runtime.open_database()
    try:
        t = f"legacy-{uuid.uuid4().hex[:10]}"  # plain SQL: the managers know only the head
        async with database.transaction() as conn:
            await conn.execute(
                text("insert into tenantry.tenants (id, display_name) values (:id, 'Legacy')"),
                {"id": t},
            )
        kek, data_key = crypto.new_key(), crypto.new_key()
        with tenant_scope(t):
            async with database.tenant_transaction() as conn:
                await conn.execute(
                    text(MIGRATED_TO_0004),
                    {
                        "tenant": t,
                        "alg_kek": crypto.ALG_ROOT,
                        "kek": await provider.wrap(kek, crypto.kek_context(t, 1), version=1),
                        "alg_data": crypto.ALG_DATA,
                        "data": crypto.aead_wrap(kek, data_key, crypto.data_key_context(t, 1, 1)),
                    },
                )
        await runtime.migrate()  # 0005 records version 1 on the existing KEK
        assert [r["root_key_version"] for r in await kek_rows(database, t)] == [1]
        with tenant_scope(t):
            async with database.tenant_transaction() as conn:
                query = "select root_key_version from tenantry.tenant_keys where purpose = 'data'"
                assert (await conn.execute(text(query))).scalars().all() == [None]
        keyring = deployed(database, provider)
        blob = await keyring.encrypt(t, b"old", purpose="p", record_id="r")
        live = await live_keks(database)
        done = await keyring.rotate_root(retire=True)
        assert (done.version, done.rewrapped, done.retired) == (2, count(live), (1,))
        assert file_versions(legacy) == [2]
        assert stat.S_IMODE(os.stat(legacy).st_mode) == 0o600
        reader = Keyring(database, FileKeyProvider.load(legacy))
        assert await reader.decrypt(t, blob, purpose="p", record_id="r") == b"old"
    finally:
        await database.dispose()
        await runtime.stop()


@pytest.mark.parametrize(
    "content",
    [
        "tenantry-root-key v2\n",
        "tenantry-root-key v2\n1 {k}\n1 {k}\n",
        "tenantry-root-key v2\n0 {k}\n",
        "tenantry-root-key v2\nx {k}\n",
        "tenantry-root-key v2\n1 {k} extra\n",
        "tenantry-root-key v1\n{k}\n{k}\n",
        "tenantry-root-key v3\n1 {k}\n",
    ],
)
def test_corrupt_key_files_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "root.key"
    path.write_text(content.format(k=base64.b64encode(os.urandom(32)).decode()))
    with pytest.raises(ConfigError, match="is corrupt"):
        FileKeyProvider.load(path)


async def test_file_provider_versions(tmp_path: Path) -> None:
    memory = FileKeyProvider(os.urandom(32))
    assert await memory.versions() == (1,)
    assert await memory.add_version() == 2
    wrapped = await memory.wrap(b"k" * 32, b"ctx", version=1)
    with pytest.raises(ConfigError, match="newest"):
        await memory.retire_versions([2])
    await memory.retire_versions([1])
    assert await memory.versions() == (2,)
    with pytest.raises(DecryptionError, match="root key version 1 is not in this root key"):
        await memory.unwrap(wrapped, b"ctx", version=1)
    other = await memory.wrap(b"k" * 32, b"ctx", version=2)
    assert await memory.unwrap(other, b"ctx", version=2) == b"k" * 32
    with pytest.raises(ConfigError, match="at least one version"):
        FileKeyProvider({})
    path = tmp_path / "gone.key"
    on_disk = FileKeyProvider.create(path)
    path.unlink()
    with pytest.raises(ConfigError, match="does not exist any more"):
        await on_disk.versions()


@pytest.fixture
async def cli_env(fresh_db: Database, tmp_path: Path, settings: Settings) -> dict[str, str]:
    """The command's environment: a fresh database with three tenants' keys, a key file."""
    path = tmp_path / "root.key"
    keyring = deployed(fresh_db, FileKeyProvider.create(path))
    for quantum in (False, True, False):
        await keyring.load(await tenant(fresh_db, "cli"), quantum=quantum)
    # The commands run synchronously, with this loop suspended: nothing of it may be left
    # running (a background integration of the audit queue would hold its rows meanwhile).
    await trail_for(fresh_db).outbox.close()
    return {
        "TENANTRY_DATA_DIR": str(settings.data_dir),
        "TENANTRY_EMBEDDED_DATABASE": str(fresh_db.url.database),
        "TENANTRY_DATABASE_URL": "",
        "TENANTRY_ROOT_KEY_FILE": str(path),
    }


def test_root_commands(cli_env: dict[str, str]) -> None:
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["keys", *args], env=cli_env)
        return result.exit_code, result.output

    path = Path(cli_env["TENANTRY_ROOT_KEY_FILE"])
    code, out = run("retire-root")
    assert (code, out.strip().splitlines()[-1]) == (0, "no older root key version to retire")
    code, out = run("rotate-root")
    assert code == 0, out
    assert "re-wrapping tenant KEKs" in out  # the progress bar
    assert re.search(
        r"root key version 2 is current: \d+ KEK\(s\) of 4 tenant\(s\) re-wrapped", out
    )
    assert file_versions(path) == [1, 2]
    FileKeyProvider.load(path)._add_version()  # version 3, nothing re-wrapped yet
    code, out = run("retire-root")
    assert code == 1
    assert ("still have KEKs wrapped by version(s) 2 (e.g. ") in out
    assert out.startswith("checking tenants")  # the progress bar
    assert "error: cannot retire root key version(s) 1, 2: " in out
    assert file_versions(path) == [1, 2, 3]
    code, out = run("rotate-root", "--resume", "--retire")
    assert code == 0, out
    assert re.search(
        r"root key version 3 is current: \d+ KEK\(s\) of 4 tenant\(s\) re-wrapped", out
    )
    assert "root key version(s) 1, 2 retired" in out
    assert file_versions(path) == [3]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

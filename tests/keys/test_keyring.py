"""Keys and encryption: the hierarchy, record ciphertexts, rotation, hybrid KEKs, shredding."""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from tenantry.config import Settings
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import (
    ConfigError,
    DecryptionError,
    KeysDestroyed,
    KeysNotLoaded,
    TenantNotFound,
)
from tenantry.keys import crypto
from tenantry.keys.encrypted import json_field
from tenantry.keys.kem import X25519_BYTES
from tenantry.keys.manager import Keyring, key_version
from tenantry.keys.models import tenant_keys
from tenantry.keys.provider import FileKeyProvider, provider_from_environment
from tests.conftest import NewTenant


@pytest.fixture
def provider() -> FileKeyProvider:
    """The deployment's root key: the managers' audit entries seal with it as well."""
    return provider_from_environment()


@pytest.fixture
def keyring(db: Database, provider: FileKeyProvider) -> Keyring:
    return Keyring(db, provider)


async def rows(db: Database, tenant_id: str) -> list[dict[str, object]]:
    with tenant_scope(tenant_id):
        async with db.tenant_transaction() as conn:
            result = await conn.execute(select(tenant_keys).order_by("purpose", "version"))
            return [dict(r) for r in result.mappings()]


async def test_round_trip_and_binding(keyring: Keyring, new_tenant: NewTenant) -> None:
    a, b = (await new_tenant("keys")).id, (await new_tenant("keys")).id
    blob = await keyring.encrypt(a, b"hello", purpose="notes.body", record_id="1")
    assert await keyring.decrypt(a, blob, purpose="notes.body", record_id="1") == b"hello"
    assert b"hello" not in blob
    assert blob[0] == crypto.FORMAT_V1
    assert key_version(blob) == 1
    await keyring.load(b)
    wrong = [
        (b, "notes.body", "1"),  # another tenant
        (a, "notes.body", "2"),  # another record
        (a, "notes.title", "1"),  # another purpose
    ]
    for tenant, purpose, record in wrong:
        with pytest.raises(DecryptionError, match="does not open"):
            await keyring.decrypt(tenant, blob, purpose=purpose, record_id=record)
    flipped = bytearray(blob)
    flipped[-1] ^= 1
    with pytest.raises(DecryptionError):
        keyring.open(a, bytes(flipped), "notes.body", "1")
    other_version = blob[:1] + (2).to_bytes(4, "big") + blob[5:]
    with pytest.raises(DecryptionError, match="no data key version 2"):
        await keyring.decrypt(a, other_version, purpose="notes.body", record_id="1")
    with pytest.raises(DecryptionError, match="not a tenantry ciphertext"):
        keyring.open(a, b"\x07" + blob[1:], "notes.body", "1")


async def test_sync_path_needs_load(keyring: Keyring, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("keys")).id
    with pytest.raises(KeysNotLoaded):
        keyring.seal(tenant, b"x", "p", "r")
    assert await keyring.load(tenant) == 1
    assert keyring.open(tenant, keyring.seal(tenant, b"x", "p", "r"), "p", "r") == b"x"


async def test_rotation_and_rewrap(
    keyring: Keyring, db: Database, provider: FileKeyProvider, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("keys")).id
    old = await keyring.encrypt(tenant, b"old", purpose="p", record_id="r")
    assert await keyring.rotate(tenant) == 2
    new = await keyring.encrypt(tenant, b"new", purpose="p", record_id="r")
    assert key_version(new) == 2
    assert await keyring.decrypt(tenant, old, purpose="p", record_id="r") == b"old"
    assert key_version(await keyring.reencrypt(tenant, old, purpose="p", record_id="r")) == 2
    before = {(r["purpose"], r["version"]): r for r in await rows(db, tenant)}
    assert before["data", 1]["retired_at"] is not None
    assert before["data", 1]["kek_version"] == 1
    assert before["data", 2]["retired_at"] is None
    assert before["data", 2]["kek_version"] == 2
    seen: list[tuple[int, int]] = []
    assert await keyring.rewrap(tenant, progress=lambda d, t: seen.append((d, t))) == 1
    assert seen == [(1, 1)]
    after = {(r["purpose"], r["version"]): r for r in await rows(db, tenant)}
    assert after["data", 1]["kek_version"] == 2
    assert after["data", 1]["wrapped_key"] != before["data", 1]["wrapped_key"]
    infos = {(k.purpose, k.version): k for k in await keyring.keys(tenant)}
    assert (infos["kek", 2].root_key_version, infos["data", 1].root_key_version) == (1, None)
    fresh = Keyring(db, provider)  # another process: reads the re-wrapped keys
    assert await fresh.decrypt(tenant, old, purpose="p", record_id="r") == b"old"
    assert await fresh.decrypt(tenant, new, purpose="p", record_id="r") == b"new"


async def test_quantum_kek(
    keyring: Keyring, db: Database, provider: FileKeyProvider, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("keys")).id
    await keyring.load(tenant, quantum=True)
    blob = await keyring.encrypt(tenant, b"secret", purpose="p", record_id="r")
    kek = next(r for r in await rows(db, tenant) if r["purpose"] == "kek")
    assert kek["algorithm"] == crypto.ALG_HYBRID
    assert await Keyring(db, provider).decrypt(tenant, blob, purpose="p", record_id="r") == (
        b"secret"
    )
    assert await keyring.rotate(tenant) == 2  # keeps the hybrid kind
    keks = [r for r in await rows(db, tenant) if r["purpose"] == "kek"]
    assert [k["algorithm"] for k in keks] == [crypto.ALG_HYBRID] * 2
    wrapped = bytes(kek["wrapped_key"])  # type: ignore[arg-type]
    context = crypto.kek_context(tenant, 1)
    from tenantry.keys.kem import hybrid_unwrap  # noqa: PLC0415

    assert len(await hybrid_unwrap(provider, wrapped, context, version=1)) == 32
    for position in (1, 1 + X25519_BYTES + 100):  # the X25519 part, the ML-KEM part
        tampered = bytearray(wrapped)
        tampered[position] ^= 1
        with pytest.raises(DecryptionError):
            await hybrid_unwrap(provider, bytes(tampered), context, version=1)
    with pytest.raises(DecryptionError):
        await hybrid_unwrap(provider, wrapped, crypto.kek_context(tenant, 2), version=1)


async def test_shredding(
    keyring: Keyring, db: Database, provider: FileKeyProvider, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("keys")).id
    field = json_field(keyring, "notes", "body")
    copied = [await field.encrypt(tenant, str(i), {"n": i}) for i in range(3)]  # the data "backup"
    assert await field.decrypt(tenant, "1", copied[1]) == {"n": 1}
    assert await keyring.destroy_tenant_keys(tenant) == 2  # KEK 1, data key 1
    assert all(r["wrapped_key"] is None and r["destroyed_at"] for r in await rows(db, tenant))
    for reader in (keyring, Keyring(db, provider)):  # this process, and a fresh one
        for i, blob in enumerate(copied):
            with pytest.raises(KeysDestroyed):
                await reader.decrypt(tenant, blob, purpose="notes.body", record_id=str(i))
    with pytest.raises(KeysDestroyed):
        await keyring.encrypt(tenant, b"x", purpose="p", record_id="r")
    with pytest.raises(KeysDestroyed):
        await keyring.rotate(tenant)


async def test_shredding_a_tenant_without_keys(
    keyring: Keyring, db: Database, provider: FileKeyProvider, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("keys")).id
    assert await keyring.destroy_tenant_keys(tenant) == 0
    with pytest.raises(KeysDestroyed):
        await Keyring(db, provider).encrypt(tenant, b"x", purpose="p", record_id="r")


async def test_wrong_root_key(
    keyring: Keyring, db: Database, tmp_path: Path, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("keys")).id
    blob = await keyring.encrypt(tenant, b"x", purpose="p", record_id="r")
    other = Keyring(db, FileKeyProvider.create(tmp_path / "other.key"))
    with pytest.raises(DecryptionError, match="wrapped by root key"):
        await other.decrypt(tenant, blob, purpose="p", record_id="r")


def test_root_key_file(tmp_path: Path, settings: Settings) -> None:
    data = settings.model_copy(update={"data_dir": tmp_path / "data", "root_key_file": None})
    first = provider_from_environment(data)
    path = tmp_path / "data" / "root.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert provider_from_environment(data).key_id == first.key_id  # loaded, not re-created
    assert FileKeyProvider.create(path).key_id == first.key_id

    named = data.model_copy(update={"root_key_file": tmp_path / "missing.key"})
    with pytest.raises(ConfigError, match=r"missing\.key does not exist"):
        provider_from_environment(named)
    corrupt = tmp_path / "corrupt.key"
    corrupt.write_text("tenantry-root-key v1\nnot base64!\n")
    with pytest.raises(ConfigError, match="is corrupt"):
        provider_from_environment(data.model_copy(update={"root_key_file": corrupt}))
    assert provider_from_environment(data.model_copy(update={"root_key_file": path})).key_id == (
        first.key_id
    )


async def test_every_key_operation_on_an_unknown_tenant_says_so(keyring: Keyring) -> None:
    ghost = "keys-ghost-tenant"
    operations: dict[str, Callable[[], Awaitable[object]]] = {
        "keys": lambda: keyring.keys(ghost),  # a read: no foreign key would notice
        "rewrap": lambda: keyring.rewrap(ghost),
        "rotate": lambda: keyring.rotate(ghost),
        "load": lambda: keyring.load(ghost),
        "destroy": lambda: keyring.destroy_tenant_keys(ghost),
        "security_level": lambda: keyring.security_level(ghost),  # not the default level
        "set_security_level": lambda: keyring.set_security_level(ghost, "quantum"),
    }
    for name, operation in operations.items():
        with pytest.raises(TenantNotFound, match=f"tenant '{ghost}' does not exist"):
            await operation()
        assert not keyring.loaded(ghost), name

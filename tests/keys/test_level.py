"""The tenant's security level decides its KEK: hybrid X25519 + ML-KEM-768 at ``quantum``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tenantry.cli import app
from tenantry.config import Settings, load_settings
from tenantry.context import tenant_scope
from tenantry.db.embedded import EmbeddedPostgres
from tenantry.db.engine import Database
from tenantry.db.runtime import DatabaseRuntime
from tenantry.errors import InvalidInput, SettingNotFound
from tenantry.keys import crypto
from tenantry.keys.manager import KeyInfo, Keyring
from tenantry.keys.provider import FileKeyProvider, provider_from_environment
from tenantry.levels import SecurityLevel
from tenantry.tenants import TenantSettings
from tests.conftest import NewTenant, cli_environment


@pytest.fixture
def provider() -> FileKeyProvider:
    """The deployment's root key: the managers' audit entries seal with it as well."""
    return provider_from_environment()


async def write_setting(db: Database, tenant: str, value: str) -> None:
    """The setting written with plain SQL (as an older version or another tool might)."""
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            await conn.execute(
                text(
                    "insert into tenantry.tenant_settings (tenant_id, key, value) "
                    "values (:t, 'security_level', to_jsonb(cast(:v as text))) "
                    "on conflict (tenant_id, key) do update set value = excluded.value"
                ),
                {"t": tenant, "v": value},
            )


KeyringWith = Callable[[dict[str, object]], Keyring]


@pytest.fixture
def keyring_with(db: Database, provider: FileKeyProvider, settings: Settings) -> KeyringWith:
    """A Keyring whose process settings are the tests' with ``update``."""
    return lambda update: Keyring(db, provider, settings=settings.model_copy(update=update))


def kek_algorithms(keys: list[KeyInfo]) -> list[str]:
    return [k.algorithm for k in keys if k.purpose == "kek"]


async def test_a_quantum_tenant_gets_a_hybrid_kek_that_decrypts(
    db: Database, provider: FileKeyProvider, new_tenant: NewTenant
) -> None:
    quantum, high = (await new_tenant("lvl")).id, (await new_tenant("lvl")).id
    keyring = Keyring(db, provider)
    assert await keyring.security_level(quantum) is SecurityLevel.HIGH  # the process default
    assert await keyring.set_security_level(quantum, "quantum") is SecurityLevel.QUANTUM
    assert await keyring.security_level(quantum) is SecurityLevel.QUANTUM
    assert (await TenantSettings(quantum, db).get("security_level")).value == "quantum"
    blobs = {}
    for tenant in (quantum, high):
        blobs[tenant] = await keyring.encrypt(tenant, b"masters", purpose="p", record_id="r")
    assert kek_algorithms(await keyring.keys(quantum))[-1] == crypto.ALG_HYBRID
    assert set(kek_algorithms(await keyring.keys(high))) == {crypto.ALG_ROOT}
    for tenant, blob in blobs.items():  # another process unwraps the hybrid KEK
        fresh = Keyring(db, provider_from_environment())
        assert await fresh.decrypt(tenant, blob, purpose="p", record_id="r") == b"masters"


async def test_a_tenant_without_keys_gets_a_hybrid_kek_first(
    db: Database, provider: FileKeyProvider, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("lvl")).id
    await write_setting(db, tenant, "quantum")  # no audit entry, so no keys made meanwhile
    keyring = Keyring(db, provider)
    assert await keyring.keys(tenant) == []
    blob = await keyring.encrypt(tenant, b"first", purpose="p", record_id="r")
    assert kek_algorithms(await keyring.keys(tenant)) == [crypto.ALG_HYBRID]
    fresh = Keyring(db, provider_from_environment())
    assert await fresh.decrypt(tenant, blob, purpose="p", record_id="r") == b"first"


async def test_raising_the_level_then_rotating_switches_to_hybrid(
    db: Database, provider: FileKeyProvider, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("lvl")).id
    keyring = Keyring(db, provider)
    old = await keyring.encrypt(tenant, b"v1", purpose="p", record_id="r")
    first = await keyring.rotate(tenant)
    assert set(kek_algorithms(await keyring.keys(tenant))) == {crypto.ALG_ROOT}
    await keyring.set_security_level(tenant, SecurityLevel.QUANTUM, rotate=False)
    assert kek_algorithms(await keyring.keys(tenant))[-1] == crypto.ALG_ROOT
    assert await keyring.rotate(tenant) > first
    assert kek_algorithms(await keyring.keys(tenant))[-1] == crypto.ALG_HYBRID
    new = await keyring.encrypt(tenant, b"v3", purpose="p", record_id="r")
    fresh = Keyring(db, provider)
    assert await fresh.decrypt(tenant, old, purpose="p", record_id="r") == b"v1"
    assert await fresh.decrypt(tenant, new, purpose="p", record_id="r") == b"v3"
    # lowering the level does not downgrade silently; --classic (quantum=False) does
    await keyring.set_security_level(tenant, "high")
    await keyring.rotate(tenant)
    assert kek_algorithms(await keyring.keys(tenant))[-1] == crypto.ALG_HYBRID
    await keyring.rotate(tenant, quantum=False)
    assert kek_algorithms(await keyring.keys(tenant))[-1] == crypto.ALG_ROOT
    await keyring.set_security_level(tenant, "quantum", rotate=False)
    await keyring.rotate(tenant, quantum=False)  # the explicit override wins over the level
    assert kek_algorithms(await keyring.keys(tenant))[-1] == crypto.ALG_ROOT
    # raising the level rotates to a hybrid KEK at once by default
    before = len(kek_algorithms(await keyring.keys(tenant)))
    await keyring.set_security_level(tenant, "quantum")
    after = kek_algorithms(await keyring.keys(tenant))
    assert (len(after), after[-1]) == (before + 1, crypto.ALG_HYBRID)
    await keyring.set_security_level(tenant, "quantum")  # hybrid already: no new version
    assert len(kek_algorithms(await keyring.keys(tenant))) == before + 1


@pytest.mark.parametrize(
    ("update", "algorithm"),
    [
        ({"security_level": "quantum"}, crypto.ALG_HYBRID),
        ({"quantum_crypto_enabled": True}, crypto.ALG_HYBRID),
        ({"security_level": "critical"}, crypto.ALG_ROOT),
    ],
)
async def test_the_process_default_applies_without_a_setting(
    keyring_with: KeyringWith,
    db: Database,
    new_tenant: NewTenant,
    update: dict[str, object],
    algorithm: str,
) -> None:
    tenant = (await new_tenant("lvl")).id
    keyring = keyring_with(update)
    await keyring.load(tenant)
    assert kek_algorithms(await keyring.keys(tenant)) == [algorithm]
    pinned = (await new_tenant("lvl")).id  # the tenant setting beats the process default
    other = crypto.ALG_ROOT if algorithm == crypto.ALG_HYBRID else crypto.ALG_HYBRID
    await write_setting(db, pinned, "high" if algorithm == crypto.ALG_HYBRID else "quantum")
    await keyring.load(pinned)
    assert kek_algorithms(await keyring.keys(pinned)) == [other]


async def test_bad_levels_are_refused_and_change_nothing(
    db: Database, provider: FileKeyProvider, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("lvl")).id
    keyring = Keyring(db, provider)
    for bad in ("ultra", "QUANTUM", "", 3, None):
        with pytest.raises(InvalidInput, match="use one of high, critical, quantum"):
            await keyring.set_security_level(tenant, bad)  # type: ignore[arg-type]
    with pytest.raises(SettingNotFound):
        await TenantSettings(tenant, db).get("security_level")
    assert await keyring.keys(tenant) == []
    # a value written past the keyring is refused when keys are made or rotated
    await write_setting(db, tenant, "ultra")
    with pytest.raises(InvalidInput, match=r"security_level.*'ultra' is invalid"):
        await keyring.load(tenant)
    assert await keyring.keys(tenant) == []
    await write_setting(db, tenant, "high")
    await keyring.load(tenant)
    with pytest.raises(InvalidInput):  # TenantSettings refuses it too ...
        await TenantSettings(tenant, db).set_managed("security_level", {"level": "quantum"})
    with tenant_scope(tenant):  # ... but another tool might write it
        async with db.tenant_transaction() as conn:
            await conn.execute(
                text(
                    'update tenantry.tenant_settings set value = \'{"level": "quantum"}\''
                    " where key = 'security_level'"
                )
            )
    before = await keyring.keys(tenant)
    with pytest.raises(InvalidInput):
        await keyring.rotate(tenant)
    assert await keyring.keys(tenant) == before
    with pytest.raises(InvalidInput):
        await keyring.security_level(tenant)


@pytest.fixture
async def cli_env(embedded_server: EmbeddedPostgres, tmp_path: Path) -> dict[str, str]:
    """A database and a root key file of this test's own, for the command."""
    return await cli_environment(embedded_server, "keys_level_cli", tmp_path / "root.key")


async def kek_algorithms_in(env: dict[str, str], tenant: str) -> list[str]:
    settings = load_settings(
        data_dir=env["TENANTRY_DATA_DIR"], embedded_database=env["TENANTRY_EMBEDDED_DATABASE"]
    )
    runtime = DatabaseRuntime(settings)
    await runtime.start()
    database = runtime.open_database()
    try:
        provider = FileKeyProvider.load(Path(env["TENANTRY_ROOT_KEY_FILE"]))
        return kek_algorithms(await Keyring(database, provider).keys(tenant))
    finally:
        await database.dispose()
        await runtime.stop()


def test_level_command(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    tenant = f"lvl-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), env=cli_env)
        return result.exit_code, result.output.strip()

    assert run("tenants", "create", tenant, "--name", "L")[0] == 0
    assert run("keys", "level", "--tenant", tenant) == (
        0,
        f"tenant {tenant}: security level high",
    )
    code, out = run("keys", "level", "--tenant", tenant, "ultra")
    assert code == 1
    assert out == "error: security level 'ultra' is invalid: use one of high, critical, quantum"
    assert run("keys", "level", "--tenant", tenant, "quantum", "--no-rotate") == (
        0,
        f"tenant {tenant}: security level quantum",
    )
    before = asyncio.run(kek_algorithms_in(cli_env, tenant))
    assert crypto.ALG_HYBRID not in before  # (the setting's audit entry may have made keys)
    assert run("keys", "rotate", "--tenant", tenant)[0] == 0  # the level decides: hybrid
    assert run("keys", "rotate", "--tenant", tenant, "--classic")[0] == 0
    assert run("keys", "level", "--tenant", tenant, "quantum")[0] == 0  # rotates at once
    algorithms = asyncio.run(kek_algorithms_in(cli_env, tenant))
    assert algorithms == [*before, crypto.ALG_HYBRID, crypto.ALG_ROOT, crypto.ALG_HYBRID]

"""Key changes reach other processes: two Keyrings on two Database objects (two engines)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import text

from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import KeysDestroyed
from tenantry.keys.cache import CachedKeys, KeyCache
from tenantry.keys.manager import Keyring, key_version
from tenantry.keys.provider import FileKeyProvider, provider_from_environment
from tenantry.keys.signal import KeySignal
from tests.conftest import NewTenant

DEADLINE = 10.0  # seconds; the checks below pass in tens of milliseconds


@pytest.fixture
def provider() -> FileKeyProvider:
    """The deployment's root key: the managers' audit entries seal with it as well."""
    return provider_from_environment()


@pytest.fixture
async def other_db(db: Database) -> AsyncIterator[Database]:
    """A second engine on the same database: another process, as far as caches go."""
    second = Database(db.url, pool_size=2)
    yield second
    await second.dispose()


async def eventually(check: Callable[[], bool], what: str) -> float:
    """Poll ``check`` until it holds; returns the seconds it took (fails after DEADLINE)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > DEADLINE:
            pytest.fail(f"not within {DEADLINE} s: {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def destroyed(keyring: Keyring, tenant: str, blob: bytes) -> bool:
    try:
        keyring.open(tenant, blob, "p", "r")
    except KeysDestroyed:
        return True
    return False


async def destroy_silently(db: Database, tenant: str) -> None:
    """Destroy the keys with plain SQL: no notification (a signal that was missed)."""
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            await conn.execute(
                text(
                    "update tenantry.tenant_keys set wrapped_key = null, destroyed_at = now() "
                    "where destroyed_at is null"
                )
            )


async def test_destruction_reaches_a_listening_process(
    db: Database, other_db: Database, provider: FileKeyProvider, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sig")).id
    here = Keyring(db, provider)
    there = Keyring(other_db, provider, max_age=None)
    deaf = Keyring(other_db, provider, max_age=None)  # the control: not listening
    blob = await here.encrypt(tenant, b"stems", purpose="p", record_id="r")
    async with there.listening():
        assert there.listener is not None
        assert there.listener.backend_pid is not None
        for reader in (there, deaf):
            await reader.load(tenant)
            assert reader.open(tenant, blob, "p", "r") == b"stems"
        await here.destroy_tenant_keys(tenant)
        took = await eventually(lambda: destroyed(there, tenant, blob), "open fails over there")
        assert took < DEADLINE
        with pytest.raises(KeysDestroyed):
            there.seal(tenant, b"x", "p", "r")
    assert deaf.open(tenant, blob, "p", "r") == b"stems"  # without the signal: stale
    assert there.listener is None


async def test_rotation_reaches_a_listening_process(
    db: Database, other_db: Database, provider: FileKeyProvider, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sig")).id
    here = Keyring(db, provider)
    there = Keyring(other_db, provider, max_age=None)
    await there.start()
    try:
        assert await there.load(tenant) == 1
        old = there.seal(tenant, b"v1", "p", "r")
        assert await here.rotate(tenant) == 2
        await eventually(
            lambda: key_version(there.seal(tenant, b"x", "p", "r")) == 2,
            "the other process seals with the new data key",
        )
        assert there.open(tenant, old, "p", "r") == b"v1"
    finally:
        await there.close()


async def test_a_lost_listener_reconnects_and_resyncs(
    db: Database, other_db: Database, provider: FileKeyProvider, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sig")).id
    here = Keyring(db, provider)
    there = Keyring(other_db, provider, max_age=None, listen_interval=0.2)
    blob = await here.encrypt(tenant, b"demo", purpose="p", record_id="r")
    async with there.listening():
        assert there.listener is not None
        await there.load(tenant)
        await destroy_silently(db, tenant)
        assert there.open(tenant, blob, "p", "r") == b"demo"  # no signal was sent
        pid = there.listener.backend_pid
        async with db.transaction() as conn:
            assert await conn.scalar(text("select pg_terminate_backend(:pid)"), {"pid": pid})
        await eventually(lambda: destroyed(there, tenant, blob), "resync after reconnecting")
        assert there.listener.connections >= 2
        assert there.listener.backend_pid not in (None, pid)


async def test_max_age_bounds_staleness_of_async_calls(
    db: Database, other_db: Database, provider: FileKeyProvider, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sig")).id
    here = Keyring(db, provider)
    aging = Keyring(other_db, provider, max_age=0.2)
    forever = Keyring(other_db, provider, max_age=None)
    blob = await here.encrypt(tenant, b"demo", purpose="p", record_id="r")
    for reader in (aging, forever):
        assert await reader.decrypt(tenant, blob, purpose="p", record_id="r") == b"demo"
    await destroy_silently(db, tenant)
    await asyncio.sleep(0.25)  # past max_age: the next async call reads the database again
    with pytest.raises(KeysDestroyed):
        await aging.decrypt(tenant, blob, purpose="p", record_id="r")
    assert await forever.decrypt(tenant, blob, purpose="p", record_id="r") == b"demo"


async def test_the_listener_sweeps_expired_entries_for_the_sync_path(
    db: Database, other_db: Database, provider: FileKeyProvider, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("sig")).id
    here = Keyring(db, provider)
    there = Keyring(other_db, provider, max_age=0.3, listen_interval=0.1)
    blob = await here.encrypt(tenant, b"demo", purpose="p", record_id="r")
    async with there.listening():
        await there.load(tenant)
        await destroy_silently(db, tenant)
        assert there.open(tenant, blob, "p", "r") == b"demo"
        await eventually(lambda: destroyed(there, tenant, blob), "the sweep reloaded the tenant")


def test_a_load_that_raced_with_a_signal_is_not_stored() -> None:
    cache = KeyCache(max_age=None)
    epoch = cache.begin_load("t")
    cache.destroyed("t")  # the signal arrives while the load reads the database
    assert cache.finish_load("t", epoch, CachedKeys(current=1)) is False
    assert "t" not in cache.entries
    epoch = cache.begin_load("t")
    assert cache.finish_load("t", epoch, CachedKeys(current=1)) is True
    cache.destroyed("t")
    assert cache.entries["t"].destroyed
    with pytest.raises(ValueError, match="max_age"):
        KeyCache(max_age=0)


def test_signal_payloads() -> None:
    signal = KeySignal("rotated", "label-1", 3)
    assert KeySignal.decode(signal.encode()) == signal
    assert KeySignal.decode(KeySignal("root", None, 2).encode()) == KeySignal("root", None, 2)
    for junk in ("", "rotated label-1", "exploded label-1 3", "rotated label-1 x"):
        assert KeySignal.decode(junk) is None

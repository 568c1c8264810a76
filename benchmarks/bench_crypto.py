"""Record encryption per call, 1 KiB: the Keyring's sync hot path against a bare AESGCM call.

``Keyring.seal`` / ``Keyring.open`` (tenant keys loaded, no I/O: header, random nonce, associated
data binding tenant, purpose, record id and key version, AES-256-GCM) against
``AESGCM(key).encrypt`` / ``decrypt`` with a fixed nonce and no associated data, the floor. Goal:
under 20 us a call. Calls are timed in batches of ``BATCH`` and reported per call.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Plan, Row, run_cases
from tenantry.keys.manager import Keyring
from tenantry.keys.provider import FileKeyProvider
from tenantry.tenants import TenantRegistry

__all__ = ["BENCHMARK"]

BATCH = 100
TENANT = "bench-crypto"
PAYLOAD = os.urandom(1024)

SEAL = "crypto: keyring seal 1 KiB, sync"
OPEN = "crypto: keyring open 1 KiB, sync"
BARE_ENCRYPT = "crypto: bare AESGCM encrypt 1 KiB"
BARE_DECRYPT = "crypto: bare AESGCM decrypt 1 KiB"


def batched(call: Callable[[], object]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        for _ in range(BATCH):
            call()

    return run


async def run(env: Environment, plan: Plan) -> list[Row]:
    await TenantRegistry(env.db).create(TENANT, "Crypto benchmark")
    with tempfile.TemporaryDirectory() as directory:
        keyring = Keyring(env.db, FileKeyProvider.create(Path(directory) / "root.key"))
        await keyring.load(TENANT)
    sealed = keyring.seal(TENANT, PAYLOAD, "notes.body", "record-1")
    assert keyring.open(TENANT, sealed, "notes.body", "record-1") == PAYLOAD
    bare = AESGCM(AESGCM.generate_key(bit_length=256))
    nonce = os.urandom(12)
    bare_sealed = bare.encrypt(nonce, PAYLOAD, None)
    cases = [
        Case(
            SEAL,
            batched(lambda: keyring.seal(TENANT, PAYLOAD, "notes.body", "record-1")),
            peer=BARE_ENCRYPT,
            batch=BATCH,
        ),
        Case(BARE_ENCRYPT, batched(lambda: bare.encrypt(nonce, PAYLOAD, None)), batch=BATCH),
        Case(
            OPEN,
            batched(lambda: keyring.open(TENANT, sealed, "notes.body", "record-1")),
            peer=BARE_DECRYPT,
            batch=BATCH,
        ),
        Case(BARE_DECRYPT, batched(lambda: bare.decrypt(nonce, bare_sealed, None)), batch=BATCH),
    ]
    return await run_cases(cases, plan, module="crypto")


BENCHMARK = Benchmark(name="crypto", operations=(SEAL, BARE_ENCRYPT, OPEN, BARE_DECRYPT), run=run)

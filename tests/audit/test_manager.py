"""AuditLog on PostgreSQL: appends, proofs against the reference, concurrency (group commit, the
lock in the opening message, stale hints), checkpoints, export and offline verification,
crypto-shredded payloads, append-only for the app role."""

from __future__ import annotations

import asyncio
import base64
import contextvars
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import text

from tenantry.audit.batch import chunk_plan
from tenantry.audit.manager import AuditLog
from tenantry.audit.merkle import (
    leaf_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from tenantry.audit.notes import MLDSA65, CheckpointSigner, NoteVerifier, verify_note
from tenantry.audit.repository import AUDIT_LOCK, lock_statement
from tenantry.audit.schemas import AuditEntry
from tenantry.audit.verifier import verify_export
from tenantry.context import PLATFORM_TENANT, tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import InvalidInput, KeysDestroyed, NotFound
from tests.conftest import NewTenant

SIGNER = CheckpointSigner.generate(quantum=True)


def entry(n: int, **kw: object) -> AuditEntry:
    return AuditEntry(
        actor=f"user-{n}",
        action="settings:write",
        resource=f"setting/{n}",
        frameworks=("SOC2", "GDPR"),
        request_id=f"req-{n}",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def audit(db: Database) -> AuditLog:
    return AuditLog(db, signer=SIGNER)


async def test_append_and_proofs_match_the_reference(
    audit: AuditLog, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("audit")).id
    hashes: list[bytes] = []
    for size in range(1, 41):
        batch = 1 if size < 20 else 3
        if len(hashes) >= size:
            continue
        new = [entry(len(hashes) + i) for i in range(batch)]
        seqs = await audit.append_many(tenant, new)
        assert seqs == list(range(len(hashes), len(hashes) + batch))
        hashes.extend(leaf_hash(e.model_copy(update={"tenant": tenant}).canonical()) for e in new)
        n = len(hashes)
        root = root_from_leaves(hashes)
        assert await audit.root(tenant) == root
        for index in range(n) if n <= 12 else (0, n // 2, n - 1):
            proof = await audit.inclusion_proof(tenant, index)
            assert proof.leaf_hash == hashes[index]
            assert proof.root_hash == root
            assert verify_inclusion(hashes[index], index, n, proof.path, root)
        for old in range(n + 1) if n <= 12 else (1, n // 3, n - 1):
            c = await audit.consistency_proof(tenant, old, n)
            assert c.old_root == root_from_leaves(hashes[:old])
            assert verify_consistency(old, n, c.old_root, root, c.path)
    old = await audit.inclusion_proof(tenant, 5, tree_size=9)
    assert verify_inclusion(hashes[5], 5, 9, old.path, root_from_leaves(hashes[:9]))
    stored = await audit.entries(tenant, start=3, limit=2)
    assert [s.seq for s in stored] == [3, 4]
    assert stored[0].entry is not None
    assert stored[0].entry.frameworks == ("GDPR", "SOC2")
    assert stored[0].entry.tenant == tenant


async def test_bad_arguments(audit: AuditLog, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("audit")).id
    await audit.append_many(tenant, [entry(i) for i in range(3)])
    with pytest.raises(NotFound):
        await audit.inclusion_proof(tenant, 3)
    with pytest.raises(InvalidInput):
        await audit.inclusion_proof(tenant, 0, tree_size=4)
    with pytest.raises(InvalidInput):
        await audit.consistency_proof(tenant, 3, 2)
    with pytest.raises(InvalidInput):
        await audit.append(tenant, entry(0, tenant="someone-else"))


async def test_concurrent_writers_make_one_sequence(audit: AuditLog, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("audit")).id

    async def writer(w: int) -> list[int]:
        return [await audit.append(tenant, entry(w * 1000 + i)) for i in range(50)]

    seqs = await asyncio.gather(*(writer(w) for w in range(8)))
    assert sorted(s for ws in seqs for s in ws) == list(range(400))
    assert all(ws == sorted(ws) for ws in seqs)
    await audit.checkpoint(tenant)
    report = await audit.verify(tenant)
    assert report.ok, report.problems
    assert report.size == 400


async def test_platform_tree(audit: AuditLog) -> None:
    seq = await audit.append(PLATFORM_TENANT, entry(1, tenant="aurora-records"))
    proof = await audit.inclusion_proof(PLATFORM_TENANT, seq)
    assert verify_inclusion(proof.leaf_hash, seq, proof.tree_size, proof.path, proof.root_hash)


async def test_checkpoint_is_a_cosigned_signed_note(audit: AuditLog, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("audit")).id
    await audit.append_many(tenant, [entry(i) for i in range(5)])
    cp = await audit.checkpoint(tenant)
    body, _, sigs = cp.note.partition("\n\n")
    root = base64.b64encode(cp.root_hash).decode()
    assert body.split("\n") == [f"tenantry.local/audit/{tenant}", "5", root]
    lines = sigs.strip("\n").split("\n")
    assert len(lines) == 2
    assert all(line.startswith("\u2014 tenantry.local/audit") for line in lines)
    keys = [NoteVerifier.decode(v.encode()) for v in SIGNER.verifiers()]
    assert verify_note(cp.note, keys) == {1, MLDSA65}
    assert await audit.checkpoint(tenant) == cp  # same size: the stored one
    other = CheckpointSigner.generate(quantum=True)
    assert verify_note(cp.note, other.verifiers()) == set()  # unknown keys are ignored


async def test_export_verifies_offline(audit: AuditLog, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("audit")).id
    await audit.append_many(tenant, [entry(i) for i in range(7)])
    await audit.checkpoint(tenant)
    await audit.append_many(tenant, [entry(i) for i in range(7, 20)])
    await audit.checkpoint(tenant)
    data = await audit.export(tenant)
    assert len(data["consistency_proofs"]) == 1
    report = verify_export(data, keys=[k.encode() for k in SIGNER.verifiers()])
    assert report.ok
    assert report.size == 20
    assert report.checkpoints_checked == 2
    rogue = CheckpointSigner.generate()
    forged = verify_export(data, keys=[k.encode() for k in rogue.verifiers()])
    assert not forged.ok
    assert {p.kind for p in forged.problems} == {"signature"}


class ShreddableCipher:
    """AES-GCM per tenant; ``destroy`` forgets the key (crypto-shredding)."""

    def __init__(self) -> None:
        self.keys: dict[str, AESGCM | None] = {}

    def _key(self, tenant_id: str) -> AESGCM:
        if tenant_id not in self.keys:
            self.keys[tenant_id] = AESGCM(AESGCM.generate_key(bit_length=256))
        key = self.keys[tenant_id]
        if key is None:
            raise KeysDestroyed(f"keys of {tenant_id} destroyed")
        return key

    async def seal(self, tenant_id: str, data: bytes, record_id: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._key(tenant_id).encrypt(nonce, data, record_id.encode())

    async def open(self, tenant_id: str, data: bytes, record_id: str) -> bytes:
        return self._key(tenant_id).decrypt(data[:12], data[12:], record_id.encode())


async def test_shredded_payloads_still_verify(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("audit")).id
    cipher = ShreddableCipher()
    audit = AuditLog(db, signer=SIGNER, cipher=cipher)
    await audit.append_many(tenant, [entry(i) for i in range(6)])
    await audit.checkpoint(tenant)
    opened = (await audit.entries(tenant))[2].entry
    assert opened is not None
    assert (opened.actor, opened.tenant) == ("user-2", tenant)
    with tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            raw = await conn.scalar(text("SELECT entry FROM tenantry.audit_entries WHERE seq = 2"))
    assert b"user-2" not in raw  # sealed at rest
    cipher.keys[tenant] = None
    assert [e.entry for e in await audit.entries(tenant)] == [None] * 6
    proof = await audit.inclusion_proof(tenant, 4)
    assert verify_inclusion(proof.leaf_hash, 4, 6, proof.path, proof.root_hash)
    report = await audit.verify(tenant)
    assert report.ok
    assert report.payloads_unavailable == 6


@pytest.mark.parametrize("statement", ["UPDATE {t} SET entry = NULL", "DELETE FROM {t}"])
@pytest.mark.parametrize("table", ["audit_entries", "audit_nodes", "audit_checkpoints"])
async def test_app_role_cannot_change_audit_rows(
    audit: AuditLog, db: Database, new_tenant: NewTenant, statement: str, table: str
) -> None:
    tenant = (await new_tenant("audit")).id
    await audit.append(tenant, entry(0))
    await audit.checkpoint(tenant)
    sql = statement.format(t=f"tenantry.{table}")
    if table != "audit_entries":
        sql = sql.replace("SET entry = NULL", "SET tenant_id = tenant_id")
    with pytest.raises(Exception, match="permission denied"), tenant_scope(tenant):
        async with db.tenant_transaction() as conn:
            await conn.execute(text(sql))
    assert await audit.size(tenant) == 1


async def test_append_in_a_scope_joins_the_callers_transaction(
    audit: AuditLog, db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("audit")).id
    with tenant_scope(tenant), pytest.raises(RuntimeError):
        async with db.tenant_transaction():
            assert await audit.append(tenant, entry(0)) == 0
            raise RuntimeError("the recorded change fails")
    assert await audit.size(tenant) == 0


async def test_concurrent_single_appends_are_grouped(
    audit: AuditLog, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("audit")).id
    seqs = await asyncio.gather(*(audit.append(tenant, entry(i)) for i in range(100)))
    assert seqs == list(range(100))  # arrival order, one sequence
    assert (await audit.verify(tenant)).ok


async def test_concurrent_batches_from_two_logs_make_one_sequence(
    db: Database, new_tenant: NewTenant
) -> None:
    """Two logs (two processes: no shared group commit, stale hints) on the tenant's lock."""
    tenant = (await new_tenant("audit")).id
    logs = [AuditLog(db, signer=SIGNER) for _ in range(2)]

    async def writer(w: int) -> list[list[int]]:
        log = logs[w % 2]
        return [
            await log.append_many(tenant, [entry(w * 1000 + b * 10 + i) for i in range(7)])
            for b in range(4)
        ]

    batches = [b for ws in await asyncio.gather(*(writer(w) for w in range(6))) for b in ws]
    assert all(b == list(range(b[0], b[0] + 7)) for b in batches)  # each batch contiguous
    assert sorted(s for b in batches for s in b) == list(range(6 * 4 * 7))  # no gap, no fork
    stored = await logs[0].entries(tenant, limit=1000)
    hashes = [s.leaf_hash for s in stored]
    assert [leaf_hash(s.entry.canonical()) for s in stored if s.entry] == hashes
    root = root_from_leaves(hashes)
    for log in logs:
        assert await log.root(tenant) == root
        proof = await log.inclusion_proof(tenant, 100)
        assert verify_inclusion(hashes[100], 100, len(hashes), proof.path, root)
    assert (await logs[1].verify(tenant)).ok


async def test_a_stale_hint_is_caught_by_the_write(db: Database, new_tenant: NewTenant) -> None:
    """A log whose last known state is behind (another log wrote, or a rollback) rereads it."""
    tenant = (await new_tenant("audit")).id
    cipher = ShreddableCipher()
    first, second = (AuditLog(db, signer=SIGNER, cipher=cipher) for _ in range(2))
    assert await first.append_many(tenant, [entry(i) for i in range(3)]) == [0, 1, 2]
    assert await second.append_many(tenant, [entry(i) for i in range(3, 8)]) == [3, 4, 5, 6, 7]
    assert await first.append(tenant, entry(8)) == 8  # its hint said size 3
    with tenant_scope(tenant), pytest.raises(RuntimeError):
        async with db.tenant_transaction():
            assert await second.append_many(tenant, [entry(9), entry(10)]) == [9, 10]
            raise RuntimeError("rolled back: the hint of size 11 is ahead")
    assert await second.append(tenant, entry(9)) == 9
    assert await first.append_many(tenant, [entry(10)]) == [10]  # sealed for its final seq
    assert [s.entry.actor for s in await first.entries(tenant) if s.entry] == [
        f"user-{i}" for i in range(11)
    ]
    assert (await first.verify(tenant)).ok


async def test_the_lock_in_the_opening_message_serializes_writers(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("audit")).id
    lock = lock_statement(tenant)
    entered = asyncio.Event()

    async def second() -> None:
        with tenant_scope(tenant):
            async with db.tenant_transaction(prologue=lock):
                entered.set()

    with tenant_scope(tenant):
        async with db.tenant_transaction(prologue=lock):
            task = asyncio.create_task(second(), context=contextvars.Context())  # not joined
            await asyncio.sleep(0.2)
            assert not entered.is_set()  # waiting in its BEGIN message for the lock
            async with db.tenant_transaction(prologue=lock) as conn:  # joined: taken again
                held = text(
                    f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                    f" AND classid = {AUDIT_LOCK} AND granted AND pid = pg_backend_pid()"
                )
                assert await conn.scalar(held) == 1
    await asyncio.wait_for(task, 5)
    assert entered.is_set()


def test_chunk_plan_starts_small_and_grows() -> None:
    assert chunk_plan([50] * 8) == [range(0, 1), range(1, 3), range(3, 6), range(6, 8)]
    assert chunk_plan([1] * 8) == [range(0, 8)]
    assert chunk_plan([1] * 100) == [range(0, 32), range(32, 80), range(80, 100)]
    assert chunk_plan([1000, 1]) == [range(0, 1), range(1, 2)]
    assert chunk_plan([]) == []


async def test_grouped_batches_are_pipelined_and_sealed_for_their_seq(
    db: Database, new_tenant: NewTenant
) -> None:
    """8 concurrent append_many(50): one transaction in chunks, each entry sealed for its seq."""
    tenant = (await new_tenant("audit")).id
    audit = AuditLog(db, signer=SIGNER, cipher=ShreddableCipher())
    await audit.append(tenant, entry(0))  # the log now has a hint for the tenant

    async def writer(w: int) -> list[int]:
        return await audit.append_many(tenant, [entry(1000 * w + i) for i in range(50)])

    batches = await asyncio.gather(*(writer(w) for w in range(1, 9)))
    assert [b[0] for b in batches] == list(range(1, 401, 50))  # arrival order, contiguous
    assert all(b == list(range(b[0], b[0] + 50)) for b in batches)
    stored = await audit.entries(tenant, limit=1000)
    assert [s.entry.actor if s.entry else None for s in stored[1:]] == [
        f"user-{1000 * w + i}" for w in range(1, 9) for i in range(50)
    ]
    assert (await audit.verify(tenant)).ok


async def test_an_entry_without_canonical_form_fails_alone(
    audit: AuditLog, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("audit")).id
    bad = entry(99, detail={"ratio": 0.5})
    results = await asyncio.gather(
        audit.append_many(tenant, [entry(0), entry(1)]),
        audit.append_many(tenant, [entry(2), bad]),
        audit.append(tenant, entry(3)),
        return_exceptions=True,
    )
    assert results[0] == [0, 1]
    assert isinstance(results[1], ValueError)
    assert results[2] == 2  # nothing of the refused submission was written
    with tenant_scope(tenant), pytest.raises(ValueError, match="float"):
        await audit.append(tenant, bad)  # joined path: raised to the caller
    assert await audit.size(tenant) == 3
    assert (await audit.verify(tenant)).ok

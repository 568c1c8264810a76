"""AuditLog: the append-only, per-tenant Merkle-tree log (RFC 9162) with signed checkpoints.

One tree per tenant, and one for the platform's own events (tenant ``platform``). Appends to a
tenant are serialized by its advisory lock, taken in the transaction's opening message; they
write the entries and every complete subtree they finish (``audit_nodes``), so a proof reads
O(log n) rows. Concurrent appends share a transaction, written in pipelined chunks
(:mod:`~tenantry.audit.batch`); each chunk is one statement that checks the tree state
it extends, which the log predicts from its previous append. Entry bytes go through the optional
``cipher`` (the tenant Keyring), bound to their sequence number: after crypto-shredding they no
longer open, but their leaf hashes remain and every proof still verifies.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from tenantry.audit.batch import AppendCombiner, Outcome, chunk_plan, discard
from tenantry.audit.merkle import (
    CompactRange,
    compose,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    range_pieces,
)
from tenantry.audit.notes import CheckpointSigner, checkpoint_body
from tenantry.audit.repository import (
    AppendBatch,
    AuditRepository,
    TreeState,
    lock_statement,
)
from tenantry.audit.schemas import (
    AuditEntry,
    ConsistencyProof,
    InclusionProof,
    SignedCheckpoint,
    StoredEntry,
)
from tenantry.audit.verifier import EXPORT_FORMAT, VerificationReport, verify_export
from tenantry.config import load_settings
from tenantry.context import PLATFORM_TENANT, current_tenant, tenant_scope, validate_tenant_id
from tenantry.db.default import UsesDatabase
from tenantry.db.engine import Database
from tenantry.errors import Conflict, DecryptionError, InvalidInput, NotFound
from tenantry.tracing import traced

__all__ = ["ORIGIN_PREFIX", "AuditCipher", "AuditLog"]

ORIGIN_PREFIX = "tenantry.local/audit"
MAX_HINTS = 4096  # tenants whose last tree state an AuditLog remembers
_b64 = base64.b64encode


class AuditCipher(Protocol):
    """What the log needs of the tenant Keyring (``open`` raises ``DecryptionError``)."""

    async def seal(self, tenant_id: str, data: bytes, record_id: str) -> bytes: ...

    async def open(self, tenant_id: str, data: bytes, record_id: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Submissions ``owners`` of a transaction, ready to write: their entries' bytes and rows."""

    owners: list[int]
    canon: list[bytes]
    leaves: list[bytes]
    batch: AppendBatch


def _record_id(seq: int) -> str:
    return f"audit_entries/{seq}"


class AuditLog(UsesDatabase):
    """Append audit entries, prove them, sign checkpoints, export and verify."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        signer: CheckpointSigner | None = None,
        cipher: AuditCipher | None = None,
        origin_prefix: str = ORIGIN_PREFIX,
    ) -> None:
        self._database = database
        self._signer = signer
        self.cipher = cipher
        self.origin_prefix = origin_prefix
        #: Coalesces concurrent appends into transactions (``combiner.set_max_batch``).
        self.combiner: AppendCombiner[AuditEntry] = AppendCombiner(self._write)
        self._hints: dict[str, TreeState] = {}  # tenant -> the state this log last wrote
        #: Awaited with the tenant before every read (the audit queue's integration).
        self.before_read: Callable[[str], Awaitable[object]] | None = None

    @property
    def signer(self) -> CheckpointSigner:
        """The checkpoint signer (default: keys in the data directory; ML-DSA at QUANTUM)."""
        if self._signer is None:
            s = load_settings()
            quantum = s.quantum_crypto_enabled or s.security_level == "quantum"
            self._signer = CheckpointSigner.from_data_dir(s.data_dir, quantum=quantum)
        return self._signer

    def origin(self, tenant_id: str) -> str:
        return f"{self.origin_prefix}/{tenant_id}"

    # -- appends ---------------------------------------------------------------------------

    @traced("audit.append")
    async def append(self, tenant_id: str, entry: AuditEntry) -> int:
        """Append one entry to ``tenant_id``'s tree; returns its sequence number (leaf index).

        Outside a tenant scope, concurrent appends to one tenant share a transaction (group
        commit, :mod:`~tenantry.audit.batch`); inside one, the append joins the
        caller's transaction, so it commits or rolls back with the change it records.
        """
        validate_tenant_id(tenant_id)
        return (await self._submit(tenant_id, [self._checked(tenant_id, entry)]))[0]

    @traced("audit.append_many")
    async def append_many(self, tenant_id: str, entries: Sequence[AuditEntry]) -> list[int]:
        """Append entries in one transaction, in order (contiguous); returns their sequence numbers.

        Grouped with concurrent appends to the tenant, or joined to the caller's transaction,
        as :meth:`append` is.
        """
        validate_tenant_id(tenant_id)
        if not entries:
            return []
        return await self._submit(tenant_id, [self._checked(tenant_id, e) for e in entries])

    async def _submit(self, tenant_id: str, entries: list[AuditEntry]) -> list[int]:
        if current_tenant() is None:
            await self._reading(tenant_id)  # queued entries, committed before, come first
            return await self.combiner.submit(tenant_id, entries)
        outcome = (await self._write(tenant_id, lambda: [entries]))[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _write(
        self, tenant_id: str, take: Callable[[], list[list[AuditEntry]]]
    ) -> list[Outcome]:
        """One transaction: the lock (in its opening message), ``take()``, the writes, commit.

        The first chunk extends the state this log last wrote (a hint, kept from its previous
        append); its statement checks that state and returns the real one when another process
        appended (or the previous transaction rolled back), to compute the chunk again.
        """
        db = await self._db()
        try:
            with tenant_scope(tenant_id):
                async with db.tenant_transaction(prologue=lock_statement(tenant_id)) as conn:
                    submissions = take()
                    repo = AuditRepository(conn)
                    state = self._hints.get(tenant_id) or await repo.state()
                    return await self._pipeline(repo, tenant_id, state, submissions)
        except BaseException:
            self._hints.pop(tenant_id, None)
            raise

    async def _pipeline(
        self,
        repo: AuditRepository,
        tenant_id: str,
        base: TreeState,
        submissions: list[list[AuditEntry]],
    ) -> list[Outcome]:
        """Write the submissions in chunks; chunk k+1 is prepared while chunk k is written."""
        outcomes: list[Outcome] = [[] for _ in submissions]

        async def prepare(chunk: range, base: TreeState) -> _Chunk:
            owners, canon = [], []
            for i in chunk:
                try:
                    data = [self._canonical(tenant_id, e) for e in submissions[i]]
                except ValueError as exc:  # no canonical form (a float in detail): fails alone
                    outcomes[i] = exc
                    continue
                owners.append(i)
                canon.extend(data)
            leaves = [leaf_hash(data) for data in canon]
            return _Chunk(owners, canon, leaves, await self._batch(tenant_id, base, canon, leaves))

        chunks = chunk_plan([len(s) for s in submissions])
        pending: asyncio.Future[_Chunk] | None = None
        try:
            chunk = await prepare(chunks[0], base)
            for k in range(len(chunks)):
                if pending is not None:
                    chunk, pending = await pending, None
                    if chunk.batch.base is not base:  # prepared on what a stale hint predicted
                        chunk = await self._rebase(tenant_id, chunk, base)
                if k + 1 < len(chunks):  # prepared while this chunk is written
                    pending = asyncio.ensure_future(prepare(chunks[k + 1], chunk.batch.after))
                if chunk.canon:
                    found = await repo.append(chunk.batch)
                    if found is not None:  # the hint was stale
                        chunk = await self._rebase(tenant_id, chunk, found)
                        if await repo.append(chunk.batch) is not None:
                            raise Conflict(
                                f"the audit tree of {tenant_id!r} changed under its lock"
                            )
                    seqs = iter(chunk.batch.seqs)
                    for i in chunk.owners:
                        outcomes[i] = list(itertools.islice(seqs, len(submissions[i])))
                    self._remember(tenant_id, chunk.batch.after)  # the next writer's hint
                base = chunk.batch.after
        finally:
            if pending is not None:
                discard(pending)
        return outcomes

    async def _rebase(self, tenant_id: str, chunk: _Chunk, base: TreeState) -> _Chunk:
        batch = await self._batch(tenant_id, base, chunk.canon, chunk.leaves)
        return replace(chunk, batch=batch)

    async def _batch(
        self, tenant_id: str, base: TreeState, canon: list[bytes], leaves: list[bytes]
    ) -> AppendBatch:
        """The rows that append ``canon`` (leaf hashes ``leaves``) to the tree at ``base``."""
        size, frontier = base
        tree = CompactRange(size, frontier)
        levels, idxs, hashes = tree.extend(leaves)
        stored = canon
        if self.cipher is not None:
            seal = self.cipher.seal
            stored = [
                await seal(tenant_id, d, _record_id(seq)) for seq, d in enumerate(canon, size)
            ]
        return AppendBatch(base, leaves, stored, levels, idxs, hashes, (tree.size, tree.frontier()))

    def _remember(self, tenant_id: str, state: TreeState) -> None:
        hints = self._hints
        hints.pop(tenant_id, None)
        hints[tenant_id] = state
        if len(hints) > MAX_HINTS:
            del hints[next(iter(hints))]

    @staticmethod
    def _checked(tenant_id: str, entry: AuditEntry) -> AuditEntry:
        if entry.tenant and tenant_id not in (entry.tenant, PLATFORM_TENANT):
            raise InvalidInput(f"entry of tenant {entry.tenant!r} in the tree of {tenant_id!r}")
        return entry

    @staticmethod
    def _canonical(tenant_id: str, entry: AuditEntry) -> bytes:
        if not entry.tenant:
            entry = entry.model_copy(update={"tenant": tenant_id})
        return entry.canonical()

    # -- reads and proofs ------------------------------------------------------------------

    async def _reading(self, tenant_id: str) -> None:
        """Before every read and direct append: ``before_read`` (the audit queue integrates what
        is committed, so reads see it and later appends come after it)."""
        if self.before_read is not None:
            await self.before_read(tenant_id)

    async def size(self, tenant_id: str) -> int:
        await self._reading(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                return await AuditRepository(conn).size()

    async def entries(self, tenant_id: str, start: int = 0, limit: int = 100) -> list[StoredEntry]:
        """Entries from ``start`` on, in order; ``entry`` is ``None`` where it cannot be opened."""
        if start < 0 or not 1 <= limit <= 10_000:
            raise InvalidInput("start must be >= 0 and limit 1-10000")
        await self._reading(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                rows = await AuditRepository(conn).page(start, limit)
        result = []
        for seq, leaf, data, recorded_at in rows:
            payload = await self._open(tenant_id, seq, data)
            entry = AuditEntry.from_canonical(payload) if payload is not None else None
            result.append(StoredEntry(seq, leaf, entry, recorded_at))
        return result

    async def _open(self, tenant_id: str, seq: int, data: bytes | None) -> bytes | None:
        if data is None:
            return None
        if self.cipher is None:
            return bytes(data)
        try:
            return await self.cipher.open(tenant_id, bytes(data), _record_id(seq))
        except DecryptionError:
            return None

    @staticmethod
    async def _hashes(repo: AuditRepository, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The hashes of RFC subtrees ``ranges``, composed from their complete pieces."""
        pieces = [range_pieces(a, b) for a, b in ranges]
        found = await repo.nodes(sorted({p for ps in pieces for p in ps}))
        try:
            return [compose([found[p] for p in ps]) for ps in pieces]
        except KeyError as missing:
            raise NotFound(f"audit node {missing} is missing: the tree is damaged") from None

    @staticmethod
    def _check_size(size: int, current: int) -> None:
        if not 0 <= size <= current:
            raise InvalidInput(f"tree size {size} is outside 0..{current}")

    async def root(self, tenant_id: str, tree_size: int | None = None) -> bytes:
        await self._reading(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                repo = AuditRepository(conn)
                current = await repo.size()
                size = current if tree_size is None else tree_size
                self._check_size(size, current)
                return (await self._hashes(repo, [(0, size)]))[0]

    async def inclusion_proof(
        self, tenant_id: str, index: int, tree_size: int | None = None
    ) -> InclusionProof:
        """The audit path of leaf ``index`` in the tree of ``tree_size`` (default: current)."""
        await self._reading(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                repo = AuditRepository(conn)
                current = await repo.size()
                size = current if tree_size is None else tree_size
                self._check_size(size, current)
                if not 0 <= index < size:
                    raise NotFound(f"no entry {index} in a tree of size {size}")
                ranges = [(index, index + 1), (0, size), *inclusion_ranges(index, size)]
                leaf, root, *path = await self._hashes(repo, ranges)
        return InclusionProof(index, size, leaf, path, root)

    async def consistency_proof(
        self, tenant_id: str, old_size: int, new_size: int
    ) -> ConsistencyProof:
        """The proof that the tree of ``new_size`` extends the tree of ``old_size``."""
        if not 0 <= old_size <= new_size:
            raise InvalidInput(f"need 0 <= old_size <= new_size, got {old_size} and {new_size}")
        await self._reading(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                repo = AuditRepository(conn)
                self._check_size(new_size, await repo.size())
                ranges = [(0, old_size), (0, new_size), *consistency_ranges(old_size, new_size)]
                old_root, new_root, *path = await self._hashes(repo, ranges)
        return ConsistencyProof(old_size, new_size, old_root, new_root, path)

    # -- checkpoints, export, verification ---------------------------------------------------

    async def checkpoint(self, tenant_id: str) -> SignedCheckpoint:
        """Sign the current tree head (C2SP signed note) and store it in audit_checkpoints."""
        origin, signer = self.origin(tenant_id), self.signer
        await self._reading(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                repo = AuditRepository(conn)
                size, frontier = await repo.state()
                root = compose(frontier)
                note = signer.sign(checkpoint_body(origin, size, root))
                size, root, note = await repo.add_checkpoint(size, root, note)
        return SignedCheckpoint(origin, size, root, note)

    async def checkpoints(self, tenant_id: str) -> list[SignedCheckpoint]:
        await self._reading(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                rows = await AuditRepository(conn).checkpoints()
        return [SignedCheckpoint(self.origin(tenant_id), s, r, n) for s, r, n in rows]

    async def export(self, tenant_id: str) -> dict[str, Any]:
        """Everything an offline verifier needs, JSON-able (see :func:`verify_export`)."""
        await self._reading(tenant_id)
        with tenant_scope(tenant_id):
            async with (await self._db()).tenant_transaction() as conn:
                repo = AuditRepository(conn)
                rows = await repo.export_rows()
                checkpoints = await repo.checkpoints()
                proofs = []
                for (old, _, _), (new, _, _) in itertools.pairwise(checkpoints):
                    path = await self._hashes(repo, consistency_ranges(old, new))
                    proofs.append({"old_size": old, "new_size": new, "path": _b64s(path)})
        entries = []
        for idx, node, seq, leaf, data in rows:
            payload = await self._open(tenant_id, seq, data) if seq is not None else None
            entries.append(
                {
                    "index": idx,
                    "node_hash": _b64(node).decode() if node is not None else None,
                    "seq": seq,
                    "leaf_hash": _b64(leaf).decode() if leaf is not None else None,
                    "payload": _b64(payload).decode() if payload is not None else None,
                }
            )
        return {
            "format": EXPORT_FORMAT,
            "tenant": tenant_id,
            "origin": self.origin(tenant_id),
            "entries": entries,
            "checkpoints": [
                {"tree_size": s, "root_hash": _b64(r).decode(), "note": n}
                for s, r, n in checkpoints
            ],
            "consistency_proofs": proofs,
            "keys": [key.encode() for key in self.signer.verifiers()],
        }

    async def verify(self, tenant_id: str) -> VerificationReport:
        """Export ``tenant_id``'s log and verify it against this log's own signer keys."""
        keys = [key.encode() for key in self.signer.verifiers()]
        return verify_export(await self.export(tenant_id), keys=keys)


def _b64s(values: Sequence[bytes]) -> list[str]:
    return [_b64(v).decode() for v in values]

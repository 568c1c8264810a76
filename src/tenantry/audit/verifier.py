"""The offline verifier of an audit export: pure, no database, no network.

It checks, for every position ``i`` of the tree: the leaf node and the entry row both exist, the
entry row's leaf hash equals the tree's leaf node, and (when the payload opens) ``SHA-256(0x00 ||
payload)`` equals it; a payload that cannot be opened (crypto-shredded tenant) is checked by its
hashes only. Then it recomputes the root at every checkpoint size, checks each checkpoint's
signatures (Ed25519 always, ML-DSA-65 when a key of that type is trusted), its origin, size and
root, and the consistency proofs between consecutive checkpoints. Every problem names the entry
index when there is one. A document that is not an export at all (not a JSON object, a field
missing or of the wrong type) is one ``format`` problem naming what is wrong, nothing else.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError

from tenantry.audit.merkle import CompactRange, leaf_hash, verify_consistency
from tenantry.audit.notes import ED25519, MLDSA65, NoteVerifier, parse_checkpoint, verify_note
from tenantry.errors import AuditVerificationError

__all__ = ["EXPORT_FORMAT", "MAX_MISSING", "Problem", "VerificationReport", "verify_export"]

EXPORT_FORMAT = "tenantry-audit-export/1"
#: The most missing entries (positions skipped by the export's indexes) the verifier stands in
#: for with placeholders, 32 bytes each; past it, it stops and says so.
MAX_MISSING = 1 << 20

_Size = Annotated[int, Field(ge=0, strict=True)]


class _Entry(BaseModel):
    index: int | None = None
    seq: int | None = None
    node_hash: str | None = None
    leaf_hash: str | None = None
    payload: str | None = None


class _Checkpoint(BaseModel):
    tree_size: _Size
    root_hash: str
    note: str


class _Proof(BaseModel):
    old_size: _Size
    new_size: _Size
    path: list[str]


class _Export(BaseModel):
    """The fields of an export the verifier reads, with their types (others are ignored)."""

    format: str
    tenant: str = ""
    origin: str | None = None
    entries: list[_Entry] = []
    checkpoints: list[_Checkpoint] = []
    consistency_proofs: list[_Proof] = []
    keys: list[str] | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: ``index`` is the entry (leaf) it concerns, or ``None``."""

    kind: str
    message: str
    index: int | None = None


@dataclass(slots=True)
class VerificationReport:
    """What :func:`verify_export` found; ``ok`` when nothing."""

    tenant: str
    size: int = 0
    entries_checked: int = 0
    payloads_unavailable: int = 0
    checkpoints_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_indices(self) -> list[int]:
        return sorted({p.index for p in self.problems if p.index is not None})

    def raise_for_problems(self) -> None:
        if self.problems:
            detail = "; ".join(p.message for p in self.problems[:5])
            raise AuditVerificationError(f"{len(self.problems)} problem(s): {detail}")

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "ok": self.ok,
            "size": self.size,
            "entries_checked": self.entries_checked,
            "payloads_unavailable": self.payloads_unavailable,
            "checkpoints_checked": self.checkpoints_checked,
            "bad_indices": self.bad_indices,
            "problems": [
                {"kind": p.kind, "index": p.index, "message": p.message} for p in self.problems
            ],
        }


def _bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except binascii.Error:
        return b""


def _leaves(entries: list[_Entry], report: VerificationReport) -> list[bytes]:
    add = report.problems.append
    leaves: list[bytes] = []
    placeholders = 0
    for item in entries:
        i = len(leaves)
        position = item.index if item.index is not None else item.seq
        if position != i:
            add(Problem("missing", f"entry {i}: no leaf or row at this index", i))
            if not isinstance(position, int) or position < i:
                continue
            placeholders += position - i
            if placeholders > MAX_MISSING:  # a forged index must not make us allocate it
                message = (
                    f"entries {i}..{position - 1} are missing: more than {MAX_MISSING:,} "
                    "missing entries, the rest of the export is not checked"
                )
                add(Problem("missing", message, i))
                break
            leaves.extend(b"\x00" * 32 for _ in range(position - i))  # placeholders
            i = position
        node, leaf, payload = (_bytes(v) for v in (item.node_hash, item.leaf_hash, item.payload))
        report.entries_checked += 1
        if node is None:
            add(Problem("missing", f"entry {i}: its leaf is missing from the tree", i))
        if leaf is None:
            add(Problem("missing", f"entry {i}: its row is missing", i))
        elif node is not None and leaf != node:
            add(Problem("leaf", f"entry {i}: its leaf hash differs from the tree's leaf", i))
        tree_leaf = node or leaf or (leaf_hash(payload) if payload is not None else b"")
        if payload is None:
            report.payloads_unavailable += 1
        elif leaf_hash(payload) != tree_leaf:
            add(Problem("payload", f"entry {i}: its content does not match its leaf hash", i))
        leaves.append(tree_leaf)
    return leaves


def _parse(data: object) -> _Export | str:
    """``data`` as an export, or what makes it none (one line)."""
    if not isinstance(data, dict):
        return f"not a {EXPORT_FORMAT} document: a JSON {_json_kind(data)}, not an object"
    if (found := data.get("format")) != EXPORT_FORMAT:
        has = "no format" if found is None else f"the format {str(found)[:64]!r}"
        return f"not a {EXPORT_FORMAT} document (it has {has})"
    try:
        return _Export.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "the document"
        message = "should be a JSON object" if error["type"] == "model_type" else error["msg"]
        return f"not a {EXPORT_FORMAT} document: {where}: {message}"


def _json_kind(value: object) -> str:
    kinds = ((list, "array"), (str, "string"), (bool, "boolean"), (int | float, "number"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "null")


def verify_export(data: object, *, keys: list[str] | None = None) -> VerificationReport:
    """Verify an :meth:`AuditLog.export` offline; ``keys`` are the trusted verifier keys
    (default: the keys in the export itself, which proves integrity, not authorship).

    ``data`` is whatever the file held: anything but an export is one ``format`` problem."""
    tenant = data.get("tenant", "") if isinstance(data, dict) else ""
    report = VerificationReport(tenant=tenant if isinstance(tenant, str) else "")
    export = _parse(data)
    if isinstance(export, str):
        report.problems.append(Problem("format", export))
        return report
    trusted = keys if keys is not None else export.keys
    if trusted is None:
        message = "the export names no verifier keys: pass the keys you trust (--key, keys=)"
        report.problems.append(Problem("keys", message))
        return report
    try:
        verifiers = [NoteVerifier.decode(k) for k in trusted]
    except AuditVerificationError as exc:
        report.problems.append(Problem("keys", exc.detail))
        return report
    kinds = {v.kind for v in verifiers}
    leaves = _leaves(export.entries, report)
    report.size = len(leaves)
    checkpoints = sorted(export.checkpoints, key=lambda c: c.tree_size)
    roots: dict[int, bytes] = {}
    tree, last_good = CompactRange(), 0
    for cp in checkpoints:
        size = cp.tree_size
        while tree.size < min(size, len(leaves)):
            tree.append(leaves[tree.size])
        report.checkpoints_checked += 1
        if size > len(leaves):
            report.problems.append(
                Problem(
                    "missing",
                    f"checkpoint {size}: entries {len(leaves)}..{size - 1} are missing",
                    len(leaves),
                )
            )
            continue
        roots[size] = tree.root()
        problem = _check_checkpoint(cp, export, size, roots[size], verifiers, kinds)
        if problem is not None:
            if problem.kind == "root":
                problem = Problem(
                    "root",
                    f"checkpoint {size}: a leaf in {last_good}..{size - 1} "
                    "was changed (the root differs)",
                    None,
                )
            report.problems.append(problem)
        else:
            last_good = size
    for proof in export.consistency_proofs:
        old, new = proof.old_size, proof.new_size
        path = [_bytes(p) or b"" for p in proof.path]
        if (
            old in roots
            and new in roots
            and not verify_consistency(old, new, roots[old], roots[new], path)
        ):
            report.problems.append(Problem("consistency", f"consistency {old}->{new} fails"))
    return report


def _check_checkpoint(  # noqa: PLR0917 - a private helper of verify_export
    cp: _Checkpoint,
    data: _Export,
    size: int,
    root: bytes,
    verifiers: list[NoteVerifier],
    kinds: set[int],
) -> Problem | None:
    note = cp.note
    try:
        origin, note_size, note_root, _ = parse_checkpoint(note)
        signed = verify_note(note, verifiers)
    except AuditVerificationError as exc:
        return Problem("signature", f"checkpoint {size}: {exc.detail}")
    if ED25519 not in signed or (MLDSA65 in kinds and MLDSA65 not in signed):
        return Problem("signature", f"checkpoint {size}: not signed by every trusted key")
    if origin != data.origin or note_size != size or _bytes(cp.root_hash) != note_root:
        return Problem("signature", f"checkpoint {size}: the note does not match its row")
    if note_root != root:
        return Problem("root", "")
    return None

"""The offline verifier of an audit export: pure, no database, no network.

It checks, for every position ``i`` of the tree: the leaf node and the entry row both exist, the
entry row's leaf hash equals the tree's leaf node, and (when the payload opens) ``SHA-256(0x00 ||
payload)`` equals it; a payload that cannot be opened (crypto-shredded tenant) is checked by its
hashes only. Then it recomputes the root at every checkpoint size, checks each checkpoint's
signatures (Ed25519 always, ML-DSA-65 when a key of that type is trusted), its origin, size and
root, and the consistency proofs between consecutive checkpoints. Every problem names the entry
index when there is one.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from tenantry.audit.merkle import CompactRange, leaf_hash, verify_consistency
from tenantry.audit.notes import ED25519, MLDSA65, NoteVerifier, parse_checkpoint, verify_note
from tenantry.errors import AuditVerificationError

__all__ = ["EXPORT_FORMAT", "Problem", "VerificationReport", "verify_export"]

EXPORT_FORMAT = "tenantry-audit-export/1"


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


def _leaves(entries: list[dict[str, Any]], report: VerificationReport) -> list[bytes]:
    add = report.problems.append
    leaves: list[bytes] = []
    for item in entries:
        i = len(leaves)
        position = item.get("index") if item.get("index") is not None else item.get("seq")
        if position != i:
            add(Problem("missing", f"entry {i}: no leaf or row at this index", i))
            if not isinstance(position, int) or position < i:
                continue
            leaves.extend(b"\x00" * 32 for _ in range(position - i))  # placeholders
            i = position
        node, leaf, payload = (_bytes(item.get(k)) for k in ("node_hash", "leaf_hash", "payload"))
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


def verify_export(data: dict[str, Any], *, keys: list[str] | None = None) -> VerificationReport:
    """Verify an :meth:`AuditLog.export` offline; ``keys`` are the trusted verifier keys
    (default: the keys in the export itself, which proves integrity, not authorship)."""
    report = VerificationReport(tenant=str(data.get("tenant", "")))
    if data.get("format") != EXPORT_FORMAT:
        report.problems.append(Problem("format", f"not a {EXPORT_FORMAT} document"))
        return report
    try:
        verifiers = [NoteVerifier.decode(k) for k in (keys if keys is not None else data["keys"])]
    except AuditVerificationError as exc:
        report.problems.append(Problem("keys", exc.detail))
        return report
    kinds = {v.kind for v in verifiers}
    leaves = _leaves(list(data.get("entries", [])), report)
    report.size = len(leaves)
    checkpoints = sorted(data.get("checkpoints", []), key=lambda c: int(c["tree_size"]))
    roots: dict[int, bytes] = {}
    tree, last_good = CompactRange(), 0
    for cp in checkpoints:
        size = int(cp["tree_size"])
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
        problem = _check_checkpoint(cp, data, size, roots[size], verifiers, kinds)
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
    for proof in data.get("consistency_proofs", []):
        old, new = int(proof["old_size"]), int(proof["new_size"])
        path = [_bytes(p) or b"" for p in proof["path"]]
        if (
            old in roots
            and new in roots
            and not verify_consistency(old, new, roots[old], roots[new], path)
        ):
            report.problems.append(Problem("consistency", f"consistency {old}->{new} fails"))
    return report


def _check_checkpoint(  # noqa: PLR0917 - a private helper of verify_export
    cp: dict[str, Any],
    data: dict[str, Any],
    size: int,
    root: bytes,
    verifiers: list[NoteVerifier],
    kinds: set[int],
) -> Problem | None:
    note = str(cp.get("note", ""))
    try:
        origin, note_size, note_root, _ = parse_checkpoint(note)
        signed = verify_note(note, verifiers)
    except AuditVerificationError as exc:
        return Problem("signature", f"checkpoint {size}: {exc.detail}")
    if ED25519 not in signed or (MLDSA65 in kinds and MLDSA65 not in signed):
        return Problem("signature", f"checkpoint {size}: not signed by every trusted key")
    if origin != data.get("origin") or note_size != size or _bytes(cp["root_hash"]) != note_root:
        return Problem("signature", f"checkpoint {size}: the note does not match its row")
    if note_root != root:
        return Problem("root", "")
    return None

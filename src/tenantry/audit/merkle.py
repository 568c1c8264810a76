"""Merkle trees in the format of Certificate Transparency (RFC 9162 §2.1), pure functions.

- leaf hash ``SHA-256(0x00 || entry)``, node hash ``SHA-256(0x01 || left || right)``, the root of
  the empty tree ``SHA-256("")``;
- a subtree ``[a, b)`` of the RFC tree is either complete (``b - a`` a power of two, ``a`` a
  multiple of it: node ``(level, a >> level)``) or a right edge, whose hash composes the
  complete pieces of ``b - a``'s binary decomposition (:func:`range_pieces`, :func:`compose`);
- :func:`inclusion_ranges` / :func:`consistency_ranges` say which subtrees a proof holds
  (RFC 9162 §2.1.3.1 / §2.1.4.1), so a store of complete-subtree hashes answers a proof with
  O(log n) rows; :func:`verify_inclusion` / :func:`verify_consistency` are the verification
  algorithms of §2.1.3.2 / §2.1.4.2;
- :class:`CompactRange` appends leaves and gives the root at any size in O(log n), and reports
  the complete nodes each append finishes (what the audit log stores; :meth:`~CompactRange.extend`
  for a batch, as columns).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256

__all__ = [
    "EMPTY_ROOT",
    "CompactRange",
    "compose",
    "consistency_ranges",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "range_pieces",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT = sha256(b"").digest()
Node = tuple[int, int]  # (level, idx): leaves [idx * 2**level, (idx + 1) * 2**level)


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``."""
    return sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_pieces(start: int, end: int) -> list[Node]:
    """The complete subtrees that make up RFC subtree ``[start, end)``, left to right."""
    pieces: list[Node] = []
    size = end - start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            pieces.append((level, start >> level))
            start += 1 << level
    return pieces


def compose(hashes: Sequence[bytes]) -> bytes:
    """The hash of an RFC subtree from its :func:`range_pieces` hashes (left to right)."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees of PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), from the leaf up."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The subtrees of PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1), in proof order."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, complete = 0, new_size, True  # SUBPROOF(m, D[start:end], b)
    m = old_size
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m -= k
            start += k
            complete = False
    if not complete:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def root_from_leaves(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[0:n]) of leaf hashes."""
    tree = CompactRange()
    for leaf in leaves:
        tree.append(leaf)
    return tree.root()


class CompactRange:
    """The complete subtrees of ``[0, size)``: append leaf hashes, read the root at any size."""

    __slots__ = ("_stack", "size")

    def __init__(self, size: int = 0, frontier: Iterable[bytes] = ()) -> None:
        """Start at ``size`` from the hashes of ``range_pieces(0, size)`` (the frontier)."""
        pieces = range_pieces(0, size)
        hashes = list(frontier)
        if len(hashes) != len(pieces):
            raise ValueError(f"a tree of size {size} has {len(pieces)} frontier nodes")
        self.size = size
        self._stack: list[tuple[int, bytes]] = [
            (level, h) for (level, _), h in zip(pieces, hashes, strict=True)
        ]

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return every node it completes, leaf included: (level, idx, hash)."""
        index = self.size
        done = [(0, index, leaf)]
        level, current = 0, leaf
        while self._stack and self._stack[-1][0] == level:
            _, left = self._stack.pop()
            current = node_hash(left, current)
            level += 1
            done.append((level, index >> level, current))
        self._stack.append((level, current))
        self.size += 1
        return done

    def extend(self, leaves: Iterable[bytes]) -> tuple[list[int], list[int], list[bytes]]:
        """:meth:`append` each leaf hash; the inner nodes completed, as (levels, idxs, hashes).

        The leaves themselves (level 0, idx = their index) are not repeated in the result.
        """
        levels: list[int] = []
        idxs: list[int] = []
        hashes: list[bytes] = []
        stack, index = self._stack, self.size
        for leaf in leaves:
            level, current = 0, leaf
            while stack and stack[-1][0] == level:
                current = sha256(b"\x01" + stack.pop()[1] + current).digest()
                level += 1
                levels.append(level)
                idxs.append(index >> level)
                hashes.append(current)
            stack.append((level, current))
            index += 1
        self.size = index
        return levels, idxs, hashes

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        return compose([h for _, h in self._stack])

    def frontier(self) -> list[bytes]:
        """The hashes of ``range_pieces(0, size)``."""
        return [h for _, h in self._stack]


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show leaf hash ``leaf`` at ``index`` under ``root``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of ``new_root`` an append-only extension of ``old_root``?"""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: prepend first_hash
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0

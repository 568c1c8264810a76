"""The pure Merkle functions against RFC 9162's definitions (recomputed naively) and vectors."""

from __future__ import annotations

from hashlib import sha256

import pytest

from tenantry.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    compose,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    range_pieces,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)


def mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) exactly as RFC 9162 §2.1.1 defines it (recursive, over leaf hashes)."""
    if not d:
        return EMPTY_ROOT
    if len(d) == 1:
        return d[0]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of §2.1.3.1."""
    if len(d) == 1:
        return []
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of §2.1.4.1."""
    if m == len(d):
        return [] if b else [mth(d)]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(f"entry {i}".encode()) for i in range(n)]


def hashes_of(ranges: list[tuple[int, int]], d: list[bytes]) -> list[bytes]:
    return [
        compose(
            [mth(d[lv_i[1] << lv_i[0] : (lv_i[1] + 1) << lv_i[0]]) for lv_i in range_pieces(a, b)]
        )
        for a, b in ranges
    ]


# The 8-leaf tree of the certificate-transparency-go / Trillian test data (leaf inputs below).
CT_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_ct_test_vectors() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    hashes = [leaf_hash(x) for x in CT_INPUTS]
    for n in range(1, 9):
        assert root_from_leaves(hashes[:n]).hex() == CT_ROOTS[n - 1]


def test_hash_prefixes() -> None:
    assert leaf_hash(b"x") == sha256(b"\x00x").digest()
    assert node_hash(b"a", b"b") == sha256(b"\x01ab").digest()


@pytest.mark.parametrize("n", range(1, 71))
def test_roots_and_inclusion(n: int) -> None:
    d = leaves(n)
    root = mth(d)
    assert root_from_leaves(d) == root
    for m in range(n):
        expected = path(m, d)
        assert hashes_of(inclusion_ranges(m, n), d) == expected
        assert verify_inclusion(d[m], m, n, expected, root)
        assert not verify_inclusion(d[m], m, n, expected, leaf_hash(b"other"))
        if m + 1 < n:
            assert not verify_inclusion(d[m + 1], m, n, expected, root)


@pytest.mark.parametrize("n", range(1, 71))
def test_consistency(n: int) -> None:
    d = leaves(n)
    olds = range(0, n + 1) if n <= 33 else sorted({0, 1, 2, 3, 5, 8, 16, 31, 32, 33, n - 1, n})
    for m in olds:
        expected = subproof(m, d, True) if 0 < m < n else []
        assert hashes_of(consistency_ranges(m, n), d) == expected
        assert verify_consistency(m, n, mth(d[:m]), mth(d), expected)
        if 0 < m < n:
            assert not verify_consistency(m, n, mth(d[:m]), leaf_hash(b"x"), expected)
            assert not verify_consistency(m, n, leaf_hash(b"x"), mth(d), expected)
            if expected:
                assert not verify_consistency(m, n, mth(d[:m]), mth(d), expected[:-1])


def test_compact_range_nodes_and_frontier() -> None:
    d = leaves(37)
    tree = CompactRange()
    nodes: dict[tuple[int, int], bytes] = {}
    for i, leaf in enumerate(d):
        for level, idx, h in tree.append(leaf):
            nodes[level, idx] = h
        assert tree.root() == mth(d[: i + 1])
        resumed = CompactRange(i + 1, tree.frontier())
        assert resumed.root() == tree.root()
    for (level, idx), h in nodes.items():
        assert h == mth(d[idx << level : (idx + 1) << level])
    assert len(nodes) == sum(37 >> level for level in range(7))
    with pytest.raises(ValueError, match="frontier"):
        CompactRange(5, [])


@pytest.mark.parametrize(("start", "count"), [(0, 1), (0, 37), (5, 50), (63, 2), (64, 65)])
def test_compact_range_extend_is_append_in_columns(start: int, count: int) -> None:
    d = leaves(start + count)
    one = CompactRange()
    for leaf in d[:start]:
        one.append(leaf)
    batch = CompactRange(start, one.frontier())
    inner = [node for leaf in d[start:] for node in one.append(leaf) if node[0] > 0]
    levels, idxs, hashes = batch.extend(d[start:])
    assert list(zip(levels, idxs, hashes, strict=True)) == inner
    assert (batch.size, batch.frontier(), batch.root()) == (one.size, one.frontier(), mth(d))

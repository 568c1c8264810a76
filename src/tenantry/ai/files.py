"""Model files as the registry stores them, and how they are loaded back: never a pickle.

Two formats (DESIGN invariant 8: nothing is unpickled):

- ``skops``: a scikit-learn estimator in skops' format (a zip of JSON and ``.npy`` arrays). Before
  loading, skops lists the types the file would construct that it does not trust by default
  (:func:`skops.io.get_untrusted_types`); every one must be in :data:`ALLOWED_TYPES`, the few
  internals of the estimators tenantry trains (their trees), else the file is refused. The types
  skops passes as ``trusted`` are exactly those computed and checked, never ``trust=True``.
- ``river-hst-json``: river's :class:`~river.anomaly.HalfSpaceTrees` as JSON (its parameters,
  feature limits, window counter and every tree's nodes in depth-first order:
  ``[feature, threshold, l_mass, r_mass]`` for a branch, ``[l_mass, r_mass]`` for a leaf),
  rebuilt node by node. river itself offers only pickle, so its state is written here.

Every file's SHA-256 is stored with it and compared (in constant time) before anything is read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Hashable
from typing import Any, Final

import skops.io as sio
from river.anomaly import HalfSpaceTrees
from river.tree.padded import PaddedBranch, PaddedLeaf

from tenantry.errors import ModelFileRejected

__all__ = [
    "ALLOWED_TYPES",
    "HST_JSON",
    "SKOPS",
    "digest",
    "dump_estimator",
    "dump_hst",
    "load_estimator",
    "load_hst",
    "verify",
]

SKOPS: Final = "skops"
HST_JSON: Final = "river-hst-json"

#: The types beyond skops' defaults a stored estimator may construct: the trees of
#: HistGradientBoostingRegressor and of IsolationForest's extra-trees. Nothing else loads.
ALLOWED_TYPES: Final = frozenset(
    {
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.tree._tree.Tree",
    }
)


def digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def verify(data: bytes, sha256: bytes) -> None:
    """Refuse a file whose SHA-256 is not the one stored with it."""
    if not hmac.compare_digest(digest(data), sha256):
        raise ModelFileRejected("the model file does not match its SHA-256: it was changed")


def dump_estimator(estimator: object) -> bytes:
    data: bytes = sio.dumps(estimator)
    return data


def load_estimator(data: bytes, sha256: bytes) -> Any:
    """The estimator of a skops file, after its digest and its types are checked."""
    verify(data, sha256)
    try:
        untrusted: list[str] = sio.get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 - any failure to read the file refuses it
        raise ModelFileRejected(f"the model file is not a skops file: {exc}") from None
    refused = sorted(set(untrusted) - ALLOWED_TYPES)
    if refused:
        raise ModelFileRejected(
            f"the model file constructs types outside the allow-list: {', '.join(refused)}"
        )
    return sio.loads(data, trusted=untrusted)


def _nodes(node: Any) -> list[list[Any]]:
    if isinstance(node, PaddedBranch):
        own = [node.feature, node.threshold, node.l_mass, node.r_mass]
        return [own, *_nodes(node.children[0]), *_nodes(node.children[1])]
    return [[node.l_mass, node.r_mass]]


def dump_hst(model: HalfSpaceTrees) -> bytes:
    """``model``'s state as JSON (see the module docstring)."""
    state = {
        "n_trees": model.n_trees,
        "height": model.height,
        "window_size": model.window_size,
        "limits": [[k, list(v)] for k, v in sorted(model.limits.items())],
        "counter": model.counter,
        "first_window": model._first_window,
        "trees": [_nodes(tree) for tree in model.trees],
    }
    return json.dumps(state, separators=(",", ":")).encode()


def _build(nodes: list[list[Any]], at: int, height: int) -> tuple[Any, int]:
    entry = nodes[at]
    if height == 0:
        l_mass, r_mass = entry
        return PaddedLeaf(l_mass=int(l_mass), r_mass=int(r_mass)), at + 1  # type: ignore[no-untyped-call]
    feature, threshold, l_mass, r_mass = entry
    left, at = _build(nodes, at + 1, height - 1)
    right, at = _build(nodes, at, height - 1)
    branch = PaddedBranch(  # type: ignore[no-untyped-call]
        left, right, int(feature), float(threshold), int(l_mass), int(r_mass)
    )
    return branch, at


def load_hst(data: bytes, sha256: bytes) -> HalfSpaceTrees:
    """The HalfSpaceTrees of a ``river-hst-json`` file, after its digest is checked."""
    verify(data, sha256)
    try:
        state = json.loads(data)
        limits: dict[Hashable, tuple[float, float]] = {
            int(k): (float(lo), float(hi)) for k, (lo, hi) in state["limits"]
        }
        model = HalfSpaceTrees(
            n_trees=int(state["n_trees"]),
            height=int(state["height"]),
            window_size=int(state["window_size"]),
            limits=limits,
        )
        trees = []
        for nodes in state["trees"]:
            tree, end = _build(nodes, 0, model.height)
            if end != len(nodes):
                raise ValueError("a tree has nodes beyond its height")
            trees.append(tree)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelFileRejected(f"the model file is not a HalfSpaceTrees state: {exc}") from None
    model.trees = trees
    model._tree_nodes = [list(t.iter_dfs()) for t in trees]
    model.counter = int(state["counter"])
    model._first_window = bool(state["first_window"])
    return model

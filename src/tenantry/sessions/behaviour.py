"""Behavioural anomaly score of a session: features, rules, and a per-tenant model.

:func:`features` makes a session (against its user's earlier activity) a fixed vector.
:class:`BehaviourModel` scores it per tenant: by hand-set :func:`rules` until the tenant has
``min_history`` sessions, then ``max(hard rules, rules * (0.5 + model / 2))``, the model (of
that tenant only) the larger of two calibrated detectors: an isolation forest (its trees copied into
numpy arrays: ~0.3 ms a score, JSON-able, never pickled) and the largest robust z-score of a
feature (a forest cannot score past its training range). Calibration: ``p``, the share of
training scores as high, becomes ``min(1, -log10(p) / 4)`` (0.75: 1 in 1,000 sessions).

A fitted model is stored (in the tenant's AI registry: :mod:`tenantry.sessions.stored`) as
:meth:`FittedModel.encode` makes it: a JSON header (format, feature
names, shapes) and one zlib-compressed block of little-endian numbers. :meth:`FittedModel.decode`
reads nothing else: no pickle, no object arrays, sizes checked before anything is allocated, and
a forest that could loop (a child numbered before its parent) or index out of range is refused
with :class:`CorruptModel`.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from datetime import datetime
from itertools import pairwise
from statistics import median
from typing import Any, Literal

import numpy as np
from sklearn.ensemble import IsolationForest

__all__ = [
    "DEFAULT_THRESHOLD",
    "FEATURE_NAMES",
    "MODEL_FORMAT",
    "Activity",
    "BehaviourModel",
    "CorruptModel",
    "FittedModel",
    "Score",
    "SessionFeatures",
    "features",
    "rules",
]

#: Above it a session is an ``anomaly`` (the choice: benchmarks/README.md, "bench_anomaly").
DEFAULT_THRESHOLD = 0.55
_Array = np.ndarray[Any, Any]


@dataclass(frozen=True, slots=True)
class Activity:
    """One recorded activity of a session (a row of ``session_activity``)."""

    at: datetime
    kind: str  # "validate" | "failed_validation" | "refresh" | "create"
    ip: str | None
    user_agent: str | None
    device_id: str | None
    requests: int = 1


@dataclass(frozen=True, slots=True)
class SessionFeatures:
    """A session in plain units; :meth:`vector` is the model's input."""

    request_rate: float  # requests a minute over the session's span (at least a minute)
    rate_vs_usual: float  # over the user's usual (median of earlier sessions); 1 if unknown
    minutes: float
    activities: float
    distinct_ips: float
    ip_changes: float  # between consecutive activities, as the other changes
    network_changes: float  # of /16
    distinct_user_agents: float
    user_agent_changes: float
    device_changes: float
    failed_validations: float
    failed_share: float
    hour_sin: float  # start hour (UTC) on the circle
    hour_cos: float
    hour_distance: float  # mean hours from the user's usual hours (0-12)
    new_ip: float  # shares of activities whose IP, /24, /16, user agent, device
    new_network: float  # the history never saw (0 without history)
    new_wide_network: float
    new_user_agent: float
    new_device: float
    history: float  # activities in the history

    def vector(self) -> tuple[float, ...]:
        """The values in :data:`FEATURE_NAMES` order, counts and rates on log scales."""
        v = [math.log1p(max(x, 0.0)) if i in _LOGGED else x for i, x in enumerate(astuple(self))]
        return (v[0], math.log2(max(self.rate_vs_usual, 1e-3)), *v[2:])


FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SessionFeatures))
# request_rate, minutes, activities, distinct_ips, ip_changes, failed_validations, history
_LOGGED = (0, 2, 3, 4, 5, 10, 20)


@dataclass(frozen=True, slots=True)
class Score:
    """An anomaly score in [0, 1], how it was made, and why (strongest reason first)."""

    value: float
    method: Literal["rules", "model"]
    reasons: list[str]


def _views(a: Activity) -> tuple[str | None, ...]:
    """IP, /24, /16 (IPv6: the first 3 and 2 groups), user agent, device."""
    parts = (a.ip or "").replace(":", ".").split(".")
    net, wide = (".".join(parts[:3]), ".".join(parts[:2])) if a.ip else (None, None)
    return a.ip, net, wide, a.user_agent, a.device_id


def _changes(values: Sequence[object]) -> int:
    return sum(1 for a, b in pairwise(values) if a != b)


def _usual_rate(history: Sequence[Activity]) -> float | None:
    rates, start, total = [], history[0].at if history else None, 0
    for prev, act in zip([None, *history], history, strict=False):
        if start and prev and (act.at - prev.at).total_seconds() > 1800:  # 30 min apart
            rates.append(total / max((prev.at - start).total_seconds() / 60, 1.0))
            start, total = act.at, 0
        total += act.requests
    if start is not None:
        rates.append(total / max((history[-1].at - start).total_seconds() / 60, 1.0))
    return median(rates) if rates else None


def features(session: Sequence[Activity], history: Sequence[Activity]) -> SessionFeatures:
    """The features of ``session`` against ``history``, the same user's earlier activity."""
    if not session:
        raise ValueError("a session needs at least one activity")
    acts, hist = sorted(session, key=lambda a: a.at), sorted(history, key=lambda a: a.at)
    n, minutes = len(acts), (acts[-1].at - acts[0].at).total_seconds() / 60
    rate, usual_rate = sum(a.requests for a in acts) / max(minutes, 1.0), _usual_rate(hist)
    failed = sum(1 for a in acts if a.kind == "failed_validation")
    counts = Counter(a.at.hour for a in hist)
    usual = [h for h in range(24) if counts[h] >= 0.05 * len(hist)]  # the user's usual hours
    near = [min((min(abs(h - u), 24 - abs(h - u)) for u in usual), default=0) for h in range(24)]
    views = [_views(a) for a in acts]
    seen = [set(column) for column in zip(*map(_views, hist), strict=True)] if hist else []
    new = [sum(1 for v in views if v[i] not in known) / n for i, known in enumerate(seen)]
    ips, _, wide, agents, devices = zip(*views, strict=True)
    hour = 2 * math.pi * (acts[0].at.hour + acts[0].at.minute / 60) / 24
    head = (
        rate,
        rate / usual_rate if usual_rate else 1.0,
        minutes,
        n,
        len(set(ips)),
        _changes(ips),
    )
    mid = (_changes(wide), len(set(agents)), _changes(agents), _changes(devices), failed)
    distance = sum(near[a.at.hour] for a in acts) / n
    tail = (failed / n, math.sin(hour), math.cos(hour), distance, *(new or [0.0] * 5))
    return SessionFeatures(*[*head, *mid, *tail, len(hist)])


def rules(f: SessionFeatures) -> tuple[float, float, list[str]]:
    """(score, score of the hard signals alone, reasons): noisy-ors ``1 - prod(1 - w)``."""
    signals: list[tuple[float, bool, str]] = []  # (weight, hard, reason)
    add = signals.append
    if f.failed_validations >= 2:
        burst = f.failed_validations >= 5
        add((0.9 if burst else 0.3, burst, f"{f.failed_validations:.0f} failed validations"))
    if f.network_changes:
        new = f.new_wide_network > 0
        add((0.85 if new else 0.2, new, f"moved to a {'never-seen ' * new}/16 mid-session"))
    if f.device_changes:
        add((0.8, True, "device changed mid-session"))
    elif f.user_agent_changes:
        add((0.4, False, "user agent changed mid-session"))
    if f.request_rate >= 30 or f.rate_vs_usual >= 8:
        both = f.request_rate >= 30 and f.rate_vs_usual >= 8
        add((0.75 if both else 0.5, False, f"request rate {f.rate_vs_usual:.1f}x usual"))
    if f.new_wide_network >= 0.5 and f.new_user_agent >= 0.5:
        add((0.6, False, "new network (/16) and new user agent"))
    elif f.new_wide_network >= 0.5:
        add((0.3, False, "new network (/16)"))
    elif f.new_user_agent >= 0.5 or f.new_device >= 0.5:
        add((0.25, False, "new user agent or device"))
    if f.hour_distance >= 3:
        add((0.45 if f.hour_distance >= 6 else 0.3, False, f"{f.hour_distance:.1f} h off hours"))
    signals.sort(key=lambda s: -s[0])
    score = 1 - math.prod(1 - w for w, _, _ in signals)
    hard = 1 - math.prod(1 - w for w, h, _ in signals if h)
    return score, hard, [reason for _, _, reason in signals]


def _path_length(n: Any) -> Any:  # of an unsuccessful search in a BST of n nodes (as sklearn)
    n = np.asarray(n, dtype=np.float64)
    m = np.maximum(n, 3.0)
    c = 2.0 * (np.log(m - 1.0) + np.euler_gamma) - 2.0 * (m - 1.0) / m
    return np.where(n <= 1, 0.0, np.where(n <= 2, 1.0, c))


def _calibrated(train: _Array, raw: float) -> float:
    """``min(1, -log10(p) / 4)``, ``p`` the share of the sorted ``train`` scores >= ``raw``."""
    n, q90 = len(train), float(train[int(0.9 * (len(train) - 1))])
    if raw <= q90:
        p = (n - int(np.searchsorted(train, raw)) + 0.5) / (n + 1)
    else:  # past the 90th percentile: an exponential tail fitted to the excesses (not empty)
        above = train[train >= q90] - q90
        p = 0.1 * math.exp(-(raw - q90) / max(float(above.mean()), 1e-9))
    return min(1.0, -math.log10(max(p, 1e-12)) / 4)


#: The stored form of a model (:meth:`FittedModel.encode`). Bump it when the arrays change; a
#: model stored in another format, or on other :data:`FEATURE_NAMES`, is refused (then retrained).
MODEL_FORMAT = 1
_META_KEYS = frozenset(("format", "features", "trees", "width", "forest_scores", "z_scores"))
_MAX_TREES, _MAX_WIDTH, _MAX_SCORES = 1000, 1 << 16, 1 << 20
_MAX_BYTES = 64 << 20  # of a stored model's numbers, uncompressed


class CorruptModel(ValueError):
    """A stored model that is not one :meth:`FittedModel.encode` made: refused, never run."""


class FittedModel:
    """A tenant's trained model, made from (and exported as) JSON-able ``state``."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state, arrays = state, {k: np.asarray(v) for k, v in state.items()}
        self.left, self.right = arrays["left"].astype(np.int32), arrays["right"].astype(np.int32)
        self.feature, self.cut = arrays["feature"].astype(np.int32), arrays["cut"]
        self.leaf, self.norm, self.trees = arrays["leaf"], state["norm"], np.arange(len(self.cut))
        self.centre, self.spread = arrays["centre"], arrays["spread"]
        self.forest_train, self.z_train = (arrays.get(k, np.zeros(1)) for k in ("forest_", "z_"))

    @classmethod
    def fit(cls, x: _Array, seed: int, trees: int) -> FittedModel:
        """sklearn's forest (its trees as padded lists, trees x nodes, -1 children at leaves)."""
        forest = IsolationForest(n_estimators=trees, random_state=seed).fit(x)
        w = max(e.tree_.node_count for e in forest.estimators_)
        out = {k: np.full((trees, w), -1.0) for k in ("left", "right", "feature", "cut", "leaf")}
        for t, est in enumerate(forest.estimators_):
            tree, k = est.tree_, est.tree_.node_count
            depth = np.zeros(k)
            for node in range(k):  # sklearn numbers a parent before its children
                for child in (tree.children_left[node], tree.children_right[node]):
                    if child >= 0:
                        depth[child] = depth[node] + 1
            out["left"][t, :k], out["right"][t, :k] = tree.children_left, tree.children_right
            out["feature"][t, :k], out["cut"][t, :k] = np.maximum(tree.feature, 0), tree.threshold
            out["leaf"][t, :k] = depth + _path_length(tree.n_node_samples)
        norm = float(_path_length(forest.max_samples_)) * trees
        state: dict[str, Any] = {k: v.tolist() for k, v in out.items()} | {"norm": norm}
        q75, q25 = np.percentile(x, [75, 25], axis=0)
        spread = np.maximum(q75 - q25, x.std(axis=0) / 2) + 1e-6
        state |= {"centre": np.median(x, axis=0).tolist(), "spread": spread.tolist()}
        first = cls(state)
        state["forest_"] = np.sort(first.forest(x)).tolist()  # the detectors' training scores
        state["z_"] = np.sort(first.z(x).max(axis=1)).tolist()
        return cls(state)

    def forest(self, x: _Array) -> _Array:
        """sklearn's ``-score_samples``: 2^(-mean path length / c(max_samples)), per row."""
        x = np.atleast_2d(x).astype(np.float32).astype(np.float64)  # sklearn compares float32
        node, rows, t = np.zeros((len(x), len(self.trees)), np.int32), np.arange(len(x)), self.trees
        while (inner := self.left[t, node] >= 0).any():
            go_left = x[rows[:, None], self.feature[t, node]] <= self.cut[t, node]
            node = np.where(inner, np.where(go_left, self.left[t, node], self.right[t, node]), node)
        return np.asarray(2.0 ** (-self.leaf[t, node].sum(axis=1) / self.norm))

    def z(self, x: _Array) -> _Array:
        return np.asarray(np.abs(np.atleast_2d(x) - self.centre) / self.spread)

    def calibrated(self, vector: _Array) -> tuple[float, _Array]:
        """The model's score of one vector in [0, 1] (the larger calibrated detector), and its
        features' robust z-scores."""
        z = self.z(vector)[0]
        forest = _calibrated(self.forest_train, float(self.forest(vector)[0]))
        return max(forest, _calibrated(self.z_train, float(z.max()))), z

    # -- the stored form -------------------------------------------------------------------------

    def encode(self) -> tuple[dict[str, Any], bytes]:
        """``(header, arrays)``: the header JSON-able, the arrays zlib-compressed little-endian
        numbers in :func:`_layout` order. Lossless: the decoded model scores exactly as this."""
        trees, width = self.left.shape
        meta: dict[str, Any] = {"format": MODEL_FORMAT, "features": list(FEATURE_NAMES)}
        meta |= {"trees": int(trees), "width": int(width)}
        meta |= {"forest_scores": len(self.forest_train), "z_scores": len(self.z_train)}
        values = (
            self.left, self.right, self.feature, self.cut, self.leaf, np.asarray([self.norm]),
            self.centre, self.spread, self.forest_train, self.z_train,
        )  # fmt: skip
        raw = b"".join(
            np.ascontiguousarray(v, dtype=kind).tobytes()
            for v, (_, kind) in zip(values, _layout(meta), strict=True)
        )
        return meta, zlib.compress(raw, 6)

    @classmethod
    def decode(cls, meta: object, blob: object) -> FittedModel:
        """The model :meth:`encode` made; :class:`CorruptModel` for anything else."""
        layout = _layout(_header(meta))
        size = sum(n * np.dtype(kind).itemsize for n, kind in layout)
        if size > _MAX_BYTES:
            raise CorruptModel(f"the model's header describes {size} bytes, over {_MAX_BYTES}")
        if not isinstance(blob, bytes | bytearray | memoryview) or len(blob) > size + 1024:
            raise CorruptModel("the model's arrays are not a compressed block of its size")
        raw, offset, values = _inflate(bytes(blob), size), 0, []
        for n, kind in layout:
            values.append(np.frombuffer(raw, dtype=kind, count=n, offset=offset).astype(kind[1:]))
            offset += n * np.dtype(kind).itemsize
        assert isinstance(meta, dict)  # noqa: S101 - checked by _header
        shape = (meta["trees"], meta["width"])
        left, right, feature, cut, leaf = (v.reshape(shape) for v in values[:5])
        norm, centre, spread, forest_, z_ = float(values[5][0]), *values[6:]
        _check_forest(left, right, feature)
        numbers = (cut, leaf, centre, spread, forest_, z_, np.asarray([norm]))
        if not all(np.isfinite(v).all() for v in numbers):
            raise CorruptModel("the model holds a number that is not finite")
        if norm <= 0 or (spread <= 0).any():
            raise CorruptModel("the model's norm and spreads must be positive")
        if (np.diff(forest_) < 0).any() or (np.diff(z_) < 0).any():
            raise CorruptModel("the model's calibration scores are not sorted")
        state: dict[str, Any] = {"left": left, "right": right, "feature": feature}
        state |= {"cut": cut, "leaf": leaf}
        state |= {"norm": norm, "centre": centre, "spread": spread, "forest_": forest_, "z_": z_}
        return cls(state)


def _header(meta: object) -> dict[str, Any]:
    if not isinstance(meta, dict) or set(meta) != _META_KEYS:
        raise CorruptModel(f"the model's header must hold exactly {sorted(_META_KEYS)}")
    if type(meta["format"]) is not int or meta["format"] != MODEL_FORMAT:
        raise CorruptModel(f"model format {meta['format']!r:.40} is not {MODEL_FORMAT}")
    if meta["features"] != list(FEATURE_NAMES):
        raise CorruptModel("the model was trained on other features than this version's")
    limits = {"trees": _MAX_TREES, "width": _MAX_WIDTH}
    limits |= {"forest_scores": _MAX_SCORES, "z_scores": _MAX_SCORES}
    for key, top in limits.items():
        if type(meta[key]) is not int or not 1 <= meta[key] <= top:
            raise CorruptModel(f"the model's {key} must be an integer in 1..{top}")
    return meta


def _layout(meta: dict[str, Any]) -> list[tuple[int, str]]:
    """(count, little-endian dtype) of each stored array, in order."""
    nodes, d = meta["trees"] * meta["width"], len(FEATURE_NAMES)
    return [
        *[(nodes, "<i4")] * 3,  # left, right, feature
        *[(nodes, "<f8")] * 2,  # cut, leaf
        (1, "<f8"),  # norm
        (d, "<f8"),  # centre
        (d, "<f8"),  # spread
        (meta["forest_scores"], "<f8"),
        (meta["z_scores"], "<f8"),
    ]


def _inflate(blob: bytes, size: int) -> bytes:
    """Exactly ``size`` bytes out of ``blob``, never more held in memory."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(blob, size)
    except zlib.error as exc:
        raise CorruptModel(f"the model's arrays do not decompress: {exc}") from exc
    if len(raw) != size or not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        raise CorruptModel(f"the model's arrays are not the {size} bytes its header describes")
    return raw


def _check_forest(left: _Array, right: _Array, feature: _Array) -> None:
    """Every walk ends (a child is numbered after its parent) and indexes inside the arrays."""
    width, index = left.shape[1], np.arange(left.shape[1])
    inner = left >= 0
    if (~inner & ((left != -1) | (right != -1))).any():
        raise CorruptModel("a leaf of the forest has a child")
    after = (left > index) & (right > index) & (left < width) & (right < width)
    if (inner & ~after).any():
        raise CorruptModel("a node's children must be numbered after it, within its tree")
    d = len(FEATURE_NAMES)
    if ((feature < -1) | (feature >= d) | (inner & (feature < 0))).any():
        raise CorruptModel("a node splits on a feature that does not exist")


class BehaviourModel:
    """Per-tenant scores: rules until a tenant has a model, then that tenant's model.

    Offline (the tests, the benchmarks): ``observe`` (sessions presumed normal: scored below the
    threshold) fits a tenant's model at ``min_history`` samples, refits every ``refit_every``, on
    the last ``max_samples`` (~1 MB a tenant). In the service the samples are rows of PostgreSQL
    and :class:`~tenantry.sessions.learner.BehaviourLearner` calls :meth:`train` and
    :meth:`install`. Deterministic given ``seed``."""

    def __init__(
        self, *, min_history: int = 200, refit_every: int = 200, max_samples: int = 2048,
        trees: int = 100, seed: int = 0,
    ) -> None:  # fmt: skip
        self.min_history, self.refit_every, self.max_samples = min_history, refit_every, max_samples
        self.trees, self.seed = trees, seed
        self._samples: dict[str, deque[tuple[float, ...]]] = {}
        self._since_fit: dict[str, int] = {}
        self._models: dict[str, FittedModel] = {}

    def observe(self, tenant_id: str, feats: SessionFeatures) -> None:
        """Add a presumed-normal session; (re)fit when due."""
        samples = self._samples.setdefault(tenant_id, deque(maxlen=self.max_samples))
        samples.append(feats.vector())
        since = self._since_fit[tenant_id] = self._since_fit.get(tenant_id, 0) + 1
        due = tenant_id not in self._models or since >= self.refit_every
        if due and len(samples) >= self.min_history:
            self.fit(tenant_id)

    def fit(self, tenant_id: str) -> None:
        """Train the tenant's model on its observed samples now (needs ``min_history``)."""
        self.install(tenant_id, self.train(tenant_id, self._samples.get(tenant_id, ())))
        self._since_fit[tenant_id] = 0

    def train(self, tenant_id: str, samples: Sequence[Sequence[float]]) -> FittedModel:
        """A model of ``tenant_id`` on ``samples`` (vectors; ``min_history`` at least), not
        installed. The same samples in the same order make the same model on every node."""
        if len(samples) < self.min_history:
            raise ValueError(f"tenant has {len(samples)} samples, needs {self.min_history}")
        seed = self.tenant_seed(tenant_id)
        return FittedModel.fit(np.asarray(samples, dtype=np.float64), seed, self.trees)

    def tenant_seed(self, tenant_id: str) -> int:
        """The seed of ``tenant_id``'s forests: the same on every node."""
        return (self.seed * 1_000_003 + zlib.crc32(tenant_id.encode())) % 2**32

    def install(self, tenant_id: str, fitted: FittedModel | None) -> None:
        """Score ``tenant_id`` with ``fitted`` from now on (None: with the rules)."""
        if fitted is None:
            self._models.pop(tenant_id, None)
        else:
            self._models[tenant_id] = fitted

    def fitted(self, tenant_id: str) -> FittedModel | None:
        return self._models.get(tenant_id)

    def score(self, tenant_id: str, feats: SessionFeatures) -> Score:
        """The session's anomaly score for this tenant."""
        value, hard, reasons = rules(feats)
        fitted = self._models.get(tenant_id)
        if fitted is None:
            return Score(round(value, 4), "rules", reasons)
        model, z = fitted.calibrated(np.asarray(feats.vector(), dtype=np.float64))
        top = [int(i) for i in np.argsort(-z)[:3] if z[i] >= 3 and model >= 0.5]
        unusual = [f"{FEATURE_NAMES[i]} unusual for this tenant ({z[i]:.0f} spreads)" for i in top]
        return Score(round(max(hard, value * (0.5 + model / 2)), 4), "model", reasons + unusual)

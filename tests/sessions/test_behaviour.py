"""The behavioural anomaly score: features, rules, per-tenant models, and quality on labels."""

from __future__ import annotations

import json
import random
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from tenantry.sessions.behaviour import (
    DEFAULT_THRESHOLD,
    FEATURE_NAMES,
    Activity,
    BehaviourModel,
    CorruptModel,
    FittedModel,
    SessionFeatures,
    features,
)
from tests.sessions.behaviour_data import ATTACKS, LabelledSession, generate, split_by_time

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
UA = "Mozilla/5.0 (Macintosh) Safari/605.1.15"
# Measured on generate(21, 3 tenants x 20 users x 20 sessions, 6% attacks): precision 0.81,
# recall 0.71 at DEFAULT_THRESHOLD (other seeds: 0.89-0.96 and 0.64-0.79); shuffled labels 0.15.
PRECISION, RECALL = 0.7, 0.55


def act(minute: float, kind: str = "validate", ip: str = "10.1.2.3", **kw: object) -> Activity:
    return Activity(
        T0 + timedelta(minutes=minute),
        kind,
        ip,
        str(kw.get("ua", UA)),
        str(kw.get("device", "d1")),
        int(kw.get("requests", 1)),  # type: ignore[call-overload]
    )


def usual_history(days: int = 10) -> list[Activity]:
    """Ten days of 09:00-09:20 sessions from 10.1.2.3 on device d1, 2 requests a minute."""
    out = []
    for day in range(days):
        out += [act(-1440 * (day + 1) + m, requests=4) for m in range(0, 21, 2)]
    return sorted(out, key=lambda a: a.at)


def vector(seed: int) -> SessionFeatures:
    """Random features, none of the rules' hard signals among them."""
    rng = random.Random(seed)
    f = SessionFeatures(*[rng.random() for _ in FEATURE_NAMES])
    return replace(f, failed_validations=0, network_changes=0, device_changes=0)


def test_features_of_a_hand_made_session() -> None:
    session = [
        act(0, "create"),
        act(5, requests=20),
        act(10, "failed_validation", ip="10.1.2.99"),
        act(20, ip="172.16.5.5", ua="curl/8.0", device="d2", requests=40),
    ]
    f = features(session, usual_history())
    assert f.minutes == 20
    assert f.activities == 4
    assert f.request_rate == pytest.approx(62 / 20)
    assert f.rate_vs_usual == pytest.approx((62 / 20) / (44 / 20))
    assert (f.distinct_ips, f.ip_changes, f.network_changes) == (3, 2, 1)
    assert (f.distinct_user_agents, f.user_agent_changes, f.device_changes) == (2, 1, 1)
    assert (f.failed_validations, f.failed_share) == (1, 0.25)
    assert (f.hour_sin, f.hour_cos) == pytest.approx(
        (np.sin(2 * np.pi * 9 / 24), np.cos(2 * np.pi * 9 / 24))
    )
    assert f.hour_distance == 0
    # 10.1.2.99 is a new IP in a known /24; 172.16.5.5 is new at every level
    assert (f.new_ip, f.new_network, f.new_wide_network) == (0.5, 0.25, 0.25)
    assert (f.new_user_agent, f.new_device) == (0.25, 0.25)
    assert f.history == len(usual_history())
    assert len(f.vector()) == len(FEATURE_NAMES)


def test_features_without_history_and_at_night() -> None:
    lone = features([act(0, "create")], [])
    assert (lone.new_ip, lone.hour_distance, lone.rate_vs_usual, lone.history) == (0, 0, 1, 0)
    night = features([act(15 * 60), act(15 * 60 + 1)], usual_history())  # 00:00 UTC
    assert night.hour_distance == 9
    with pytest.raises(ValueError, match="at least one"):
        features([], [])


def test_rules_flag_bursts_and_pass_the_usual() -> None:
    model = BehaviourModel()
    usual = model.score(
        "t", features([act(m, requests=4) for m in range(0, 21, 2)], usual_history())
    )
    assert usual.method == "rules"
    assert usual.value < 0.1
    assert usual.reasons == []
    burst = [act(i / 10, "failed_validation", ip=f"45.{i}.1.1", ua="curl/8.0") for i in range(12)]
    stuffed = model.score("t", features(burst, usual_history()))
    assert stuffed.value >= DEFAULT_THRESHOLD
    assert stuffed.reasons[0] == "12 failed validations"


def test_rules_until_min_history_then_the_model() -> None:
    model = BehaviourModel(min_history=50, refit_every=1000, trees=20, seed=3)
    for i in range(49):
        model.observe("a", vector(i))
    assert model.score("a", vector(999)).method == "rules"
    model.observe("a", vector(49))
    score = model.score("a", vector(999))
    assert score.method == "model"
    assert 0.0 <= score.value <= 1.0
    with pytest.raises(ValueError, match="needs 50"):
        model.fit("empty")


def test_tenants_are_separate() -> None:
    model = BehaviourModel(min_history=30, trees=10)
    for i in range(40):
        model.observe("a", vector(i))
    assert model.score("a", vector(1)).method == "model"
    assert model.score("b", vector(1)).method == "rules"  # b never got a's samples
    assert len(model._samples["a"]) == 40
    assert "b" not in model._samples
    for i in range(30):
        model.observe("b", vector(1000 + i))
    a_state, b_state = model._models["a"].state, model._models["b"].state
    assert a_state["centre"] != b_state["centre"]


def test_memory_is_bounded_and_scores_are_deterministic() -> None:
    def trained(seed: int) -> BehaviourModel:
        model = BehaviourModel(min_history=20, refit_every=20, max_samples=25, trees=10, seed=seed)
        for i in range(60):
            model.observe("a", vector(i))
        return model

    one, again, other = trained(1), trained(1), trained(2)
    assert len(one._samples["a"]) == 25
    probes = [vector(500 + i) for i in range(20)]
    first = [one.score("a", p).value for p in probes]
    assert first == [again.score("a", p).value for p in probes]
    assert first != [other.score("a", p).value for p in probes]
    assert all(0.0 <= v <= 1.0 for v in first)


def test_the_copied_forest_scores_as_sklearn_and_is_json() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6))
    fitted = FittedModel.fit(x, seed=7, trees=50)
    probes = np.vstack([rng.normal(size=(50, 6)), rng.normal(scale=5, size=(50, 6))])
    sklearn = -IsolationForest(n_estimators=50, random_state=7).fit(x).score_samples(probes)
    np.testing.assert_allclose(fitted.forest(probes), sklearn, rtol=1e-12)
    again = FittedModel(json.loads(json.dumps(fitted.state)))
    np.testing.assert_array_equal(again.forest(probes), fitted.forest(probes))


def test_the_stored_form_is_lossless_and_checked() -> None:
    """``encode`` then ``decode`` scores exactly as the fitted model; anything else is refused
    before it is used (see also tests/sessions/test_learning.py, for rows in PostgreSQL)."""
    rng = np.random.default_rng(1)
    fitted = FittedModel.fit(rng.normal(size=(64, 21)), seed=1, trees=5)
    meta, arrays = fitted.encode()
    probes = rng.normal(scale=3, size=(50, 21))
    decoded = FittedModel.decode(json.loads(json.dumps(meta)), arrays)
    np.testing.assert_array_equal(decoded.forest(probes), fitted.forest(probes))
    np.testing.assert_array_equal(decoded.z(probes), fitted.z(probes))
    raw = zlib.decompress(arrays)
    nan = bytearray(raw)
    nodes = meta["trees"] * meta["width"]
    nan[3 * 4 * nodes : 3 * 4 * nodes + 8] = np.array([np.nan]).tobytes()  # the first cut
    bad_feature = bytearray(raw)
    bad_feature[2 * 4 * nodes : 2 * 4 * nodes + 4] = np.array([99], "<i4").tobytes()
    refused = [
        (meta, zlib.compress(bytes(nan))),
        (meta, zlib.compress(bytes(bad_feature))),
        (meta, zlib.compress(raw[:-1])),
        (meta, zlib.compress(raw) + b"trailing"),
        (meta, "not bytes"),
        ({**meta, "trees": "5"}, arrays),
        ({**meta, "extra": 1}, arrays),
        ([meta], arrays),
        (None, arrays),
        ({**meta, "format": 2}, arrays),
        ({**meta, "z_scores": 0}, arrays),
    ]
    for bad_meta, bad_arrays in refused:
        with pytest.raises(CorruptModel):
            FittedModel.decode(bad_meta, bad_arrays)


def evaluate(data: list[LabelledSession], *, threshold: float) -> tuple[float, float]:
    """Train online on the first 60% of each user's sessions (observing what scores below the
    threshold, as the behaviour learner does), then (precision, recall) on the rest."""
    train, test = split_by_time(data, 0.6)
    model = BehaviourModel(seed=0)
    for s in train:
        f = features(s.activities, s.history)
        if model.score(s.tenant_id, f).value < threshold:
            model.observe(s.tenant_id, f)
    scores = [model.score(s.tenant_id, features(s.activities, s.history)) for s in test]
    assert {score.method for score in scores} == {"model"}
    flagged = [score.value >= threshold for score in scores]
    hits = sum(1 for f, s in zip(flagged, test, strict=True) if f and s.label)
    return hits / max(sum(flagged), 1), hits / sum(s.label for s in test)


def test_generated_data_is_labelled_and_deterministic() -> None:
    data = generate(5, tenants=2, users_per_tenant=5, sessions_per_user=30, attack_rate=0.2)
    assert data == generate(5, tenants=2, users_per_tenant=5, sessions_per_user=30, attack_rate=0.2)
    kinds = {s.attack for s in data if s.label}
    assert kinds == set(ATTACKS)
    assert all((s.attack is None) != s.label for s in data)
    assert all(s.seq >= 2 for s in data if s.label)
    assert all(not s.history for s in data if s.seq == 0)


def test_precision_and_recall_on_generated_takeovers() -> None:
    data = generate(21, tenants=3, users_per_tenant=20, sessions_per_user=20, attack_rate=0.06)
    precision, recall = evaluate(data, threshold=DEFAULT_THRESHOLD)
    assert precision >= PRECISION, (precision, recall)
    assert recall >= RECALL, (precision, recall)
    # the check can fail: with labels shuffled, the same scores have poor precision
    labels = [s.label for s in data]
    random.Random(1).shuffle(labels)
    shuffled = [
        LabelledSession(s.tenant_id, s.user_id, s.seq, s.activities, s.history, lab)
        for s, lab in zip(data, labels, strict=True)
    ]
    assert evaluate(shuffled, threshold=DEFAULT_THRESHOLD)[0] < 0.3

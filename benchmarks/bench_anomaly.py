"""The behavioural anomaly score (:mod:`tenantry.sessions.behaviour`): quality and speed.

Quality is measured on a data set of ``tests.sessions.behaviour_data.generate`` (normal
sessions with benign noise, and account takeovers of five kinds injected into them, labelled),
split in time: each user's first 60% of sessions train, the rest are held out. Training is
online, as the behaviour learner does it: every training session is scored, and observed (a
training sample for its tenant) only when it scores below ``DEFAULT_THRESHOLD``; unlabelled
takeovers that slip under it train the model too. Each tenant's model is then fitted on what it
observed, and the held-out sessions are scored, at ``DEFAULT_THRESHOLD``, by that model and by
the rules alone (a model with no history: what a new tenant gets), which is the peer of every
model row. Rows are precision, recall and F1, and recall per attack kind.

Speed: ``score()`` of one held-out session's features, per call (batches of ``BATCH``), in model
mode against rules mode; and ``features()`` of a session against its user's history.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import cache, partial

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Case, Metric, Plan, Row, run_cases, run_metrics
from tenantry.sessions.behaviour import (
    DEFAULT_THRESHOLD,
    BehaviourModel,
    SessionFeatures,
    features,
)
from tests.sessions.behaviour_data import ATTACKS, LabelledSession, generate, split_by_time

__all__ = ["BENCHMARK"]

SEED = 7
BATCH = 10
FULL = {"tenants": 6, "users_per_tenant": 30, "sessions_per_user": 40, "attack_rate": 0.05}
QUICK = {"tenants": 4, "users_per_tenant": 25, "sessions_per_user": 30, "attack_rate": 0.05}

SCORE_MODEL = "anomaly score(), model mode"
SCORE_RULES = "anomaly score(), rules mode"
FEATURES = "anomaly features() of a session and its history"


def name(figure: str, method: str) -> str:
    return f"anomaly {figure}, {method}"


FIGURES = ("precision", "recall", "F1", *(f"recall {kind}" for kind in ATTACKS))
OPERATIONS = (
    *(name(figure, method) for figure in FIGURES for method in ("model", "rules only")),
    SCORE_MODEL,
    SCORE_RULES,
    FEATURES,
)


class Evaluation:
    """The data set, the trained model, and both methods' scores of the held-out sessions."""

    def __init__(self, *, quick: bool) -> None:
        data = generate(SEED, **(QUICK if quick else FULL))  # type: ignore[arg-type]
        self.data = data
        self.features = {id(s): features(s.activities, s.history) for s in data}
        train, self.test = split_by_time(data, 0.6)
        self.model, self.rules = BehaviourModel(seed=SEED), BehaviourModel(min_history=2**62)
        for s in train:
            f = self.features[id(s)]
            if self.model.score(s.tenant_id, f).value < DEFAULT_THRESHOLD:
                self.model.observe(s.tenant_id, f)
        for tenant in sorted({s.tenant_id for s in data}):
            self.model.fit(tenant)
        self.flagged = {
            method: [
                model.score(s.tenant_id, self.features[id(s)]).value >= DEFAULT_THRESHOLD
                for s in self.test
            ]
            for method, model in (("model", self.model), ("rules only", self.rules))
        }

    def figure(self, figure: str, method: str) -> float:
        flagged = self.flagged[method]
        if figure.startswith("recall "):
            kind = figure.removeprefix("recall ")
            chosen = [f for f, s in zip(flagged, self.test, strict=True) if s.attack == kind]
            return sum(chosen) / max(len(chosen), 1)
        hits = sum(1 for f, s in zip(flagged, self.test, strict=True) if f and s.label)
        precision = hits / max(sum(flagged), 1)
        recall = hits / max(sum(s.label for s in self.test), 1)
        if figure == "precision":
            return precision
        if figure == "recall":
            return recall
        return 2 * precision * recall / max(precision + recall, 1e-12)

    def count(self, figure: str) -> int:
        if figure.startswith("recall "):
            return sum(1 for s in self.test if s.attack == figure.removeprefix("recall "))
        return len(self.test)


@cache
def evaluation(quick: bool) -> Evaluation:
    return Evaluation(quick=quick)


def figure_of(quick: bool, figure: str, method: str) -> float:
    return evaluation(quick).figure(figure, method)


def metrics(quick: bool) -> list[Metric]:
    out = []
    for figure in FIGURES:
        model, rules = name(figure, "model"), name(figure, "rules only")
        unit, count = figure.split()[0], evaluation(quick).count(figure)
        out.append(Metric(model, partial(figure_of, quick, figure, "model"), unit, rules, count))
        rules_only = partial(figure_of, quick, figure, "rules only")
        out.append(Metric(rules, rules_only, unit, count=count))
    return out


def score_case(sessions: Sequence[tuple[str, SessionFeatures]], model: BehaviourModel) -> Case:
    cycle = itertools.cycle(sessions)

    async def run() -> None:
        for _ in range(BATCH):
            tenant, feats = next(cycle)
            model.score(tenant, feats)

    name_ = SCORE_MODEL if model.min_history < 2**62 else SCORE_RULES
    return Case(name_, run, peer=SCORE_RULES if name_ == SCORE_MODEL else None, batch=BATCH)


def features_case(sessions: Sequence[LabelledSession]) -> Case:
    cycle = itertools.cycle(sessions)

    async def run() -> None:
        s = next(cycle)
        features(s.activities, s.history)

    return Case(FEATURES, run)


async def run(env: Environment, plan: Plan) -> list[Row]:
    del env
    quick = plan.iterations < 1000
    rows = run_metrics(metrics(quick), plan, module="anomaly")
    if plan.wants_any((SCORE_MODEL, SCORE_RULES, FEATURES)):
        ev = evaluation(quick)
        sessions = [(s.tenant_id, ev.features[id(s)]) for s in ev.test]
        cases = [score_case(sessions, ev.model), score_case(sessions, ev.rules)]
        cases.append(features_case(ev.test))
        rows += await run_cases(cases, plan, module="anomaly")
    return rows


BENCHMARK = Benchmark(name="anomaly", operations=OPERATIONS, run=run)

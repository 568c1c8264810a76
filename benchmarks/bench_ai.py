"""The AI manager (:mod:`tenantry.ai`): micro-batched predictions, and anomaly detection quality.

Speed: a HistGradientBoostingRegressor (3 features, 100 trees) asked for one row by each of
``CONCURRENCY`` coroutines at once, through ``AIManager.predict`` (micro-batched; the model and
its alias cached, so no database call per prediction after the first), against scikit-learn's
``predict`` called one row at a time in the same run. Rows: p50/p95 of one call, throughput.

Quality: river's Shuttle set (shipped with river: 49,097 rows, 3,511 anomalies), a seeded sample
(all rows; ``--quick`` 5,000), features min-max scaled; IsolationForest and HalfSpaceTrees
trained on the first 60 % (unlabelled), thresholded at the 95 % quantile of their training
scores (ANOMALY_DETECTION_THRESHOLD's default), against a robust z-score (the largest
|x - median| / (1.4826 MAD) over the features) with the same threshold rule. Rows: precision
and recall on the held-out 40 %.
"""

from __future__ import annotations

import asyncio
import time
from functools import cache
from typing import Any

import numpy as np
from river.anomaly import HalfSpaceTrees
from river.datasets import Shuttle
from sklearn.ensemble import HistGradientBoostingRegressor, IsolationForest

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Metric, Plan, Row, run_metrics

__all__ = ["BENCHMARK"]

CONCURRENCY = 64
METHODS = ("isolation forest", "half-space trees", "robust z-score")
QUALITY = tuple(f"ai shuttle {f}, {m}" for f in ("precision", "recall") for m in METHODS)
SPEED = (
    "ai predict p50, micro-batched",
    "ai predict p95, micro-batched",
    "ai predictions/s, micro-batched",
    "ai predict p50, sklearn one row",
    "ai predict p95, sklearn one row",
    "ai predictions/s, sklearn one row",
)
OPERATIONS = (*QUALITY, *SPEED)


@cache
def shuttle(quick: bool) -> dict[str, float]:
    rows = list(Shuttle())
    x = np.array([[float(v) for v in r[0].values()] for r in rows])
    y = np.array([int(r[1]) for r in rows])
    rng = np.random.default_rng(7)
    order = rng.permutation(len(x))[: 5000 if quick else len(x)]
    x, y = x[order], y[order]
    x = (x - x.min(axis=0)) / np.where(np.ptp(x, axis=0) > 0, np.ptp(x, axis=0), 1)
    cut = int(len(x) * 0.6)
    train, test, truth = x[:cut], x[cut:], y[cut:].astype(bool)
    scores: dict[str, tuple[Any, Any]] = {}
    forest = IsolationForest(n_estimators=100, random_state=0).fit(train)
    scores["isolation forest"] = (-forest.score_samples(train), -forest.score_samples(test))
    hst = HalfSpaceTrees(n_trees=25, height=8, window_size=250, seed=0)
    for row in train:
        hst.learn_one(dict(enumerate(row.tolist())))
    scores["half-space trees"] = tuple(
        np.array([hst.score_one(dict(enumerate(r.tolist()))) for r in part])
        for part in (train, test)
    )
    median = np.median(train, axis=0)
    mad = 1.4826 * np.median(np.abs(train - median), axis=0)
    mad = np.where(mad > 0, mad, 1e-9)
    scores["robust z-score"] = tuple(
        np.max(np.abs(part - median) / mad, axis=1) for part in (train, test)
    )
    out = {}
    for method, (on_train, on_test) in scores.items():
        flagged = on_test >= np.quantile(on_train, 0.95)
        hits = float(np.sum(flagged & truth))
        out[f"ai shuttle precision, {method}"] = hits / max(float(np.sum(flagged)), 1.0)
        out[f"ai shuttle recall, {method}"] = hits / max(float(np.sum(truth)), 1.0)
    return out


async def speed(seconds: float) -> dict[str, float]:
    from tenantry.ai import MicroBatcher  # noqa: PLC0415

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, size=(2000, 3))
    model = HistGradientBoostingRegressor(max_iter=100, random_state=0).fit(x, x.sum(axis=1))
    batcher = MicroBatcher()
    out: dict[str, float] = {}

    async def batched(row: Any, latencies: list[int]) -> None:
        start = time.perf_counter_ns()
        await batcher.submit("m", row, model.predict)
        latencies.append(time.perf_counter_ns() - start)

    async def one_at_a_time(row: Any, latencies: list[int]) -> None:
        start = time.perf_counter_ns()
        model.predict(row)
        latencies.append(time.perf_counter_ns() - start)
        await asyncio.sleep(0)

    for label, call in (("micro-batched", batched), ("sklearn one row", one_at_a_time)):
        latencies: list[int] = []
        begin = time.perf_counter()
        count = 0
        while time.perf_counter() - begin < seconds:
            rows = [x[(count + i) % len(x)][None, :] for i in range(CONCURRENCY)]
            await asyncio.gather(*(call(r, latencies) for r in rows))
            count += CONCURRENCY
        elapsed = time.perf_counter() - begin
        ordered = sorted(latencies)
        out[f"ai predict p50, {label}"] = ordered[len(ordered) // 2] / 1e6
        out[f"ai predict p95, {label}"] = ordered[int(len(ordered) * 0.95)] / 1e6
        out[f"ai predictions/s, {label}"] = count / elapsed
    return out


async def run(env: Environment, plan: Plan) -> list[Row]:
    del env
    quick = plan.iterations < 1000
    figures = await speed(0.5 if quick else 3.0)
    metrics = [
        Metric(name, (lambda n=name: shuttle(quick)[n]), "ratio",
               None if name.endswith("robust z-score") else name.rsplit(", ", 1)[0]
               + ", robust z-score", 0)
        for name in QUALITY
    ]  # fmt: skip
    for name in SPEED:
        unit = "1/s" if "/s" in name else "ms"
        peer = name.replace("micro-batched", "sklearn one row") if "micro" in name else None
        metrics.append(Metric(name, (lambda n=name: figures[n]), unit, peer))
    return run_metrics(metrics, plan, module="ai")


BENCHMARK = Benchmark(name="ai", operations=OPERATIONS, run=run)

"""Small, seeded training sets for the AI tests (seconds of CPU at most)."""

from __future__ import annotations

from typing import Any

import numpy as np


def latency_data(n: int = 300, *, seed: int = 1, noise: float = 1.0) -> dict[str, Any]:
    """Latency from (rps, cpu, pool in use): a smooth function plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, size=(n, 3))
    y = 5 + 2 * x[:, 0] + x[:, 1] ** 2 / 4 + 3 * np.sin(x[:, 2]) + rng.normal(0, noise, n)
    return {
        "features": x.tolist(),
        "target": y.tolist(),
        "feature_names": ["rps", "cpu", "pool"],
        "source": "tests.ai.data.latency_data",
        "rows": f"seed={seed}",
    }


def anomaly_data(n: int = 400, *, seed: int = 2) -> dict[str, Any]:
    """Normal points around the origin and 5 % far away, labelled."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(0, 1, size=(n, 2))
    labels = np.zeros(n)
    far = rng.choice(n, size=n // 20, replace=False)
    normal[far] += rng.choice([-8.0, 8.0], size=(len(far), 2))
    labels[far] = 1
    return {"features": normal.tolist(), "labels": labels.astype(int).tolist()}

"""The scaling advice in the Prometheus exposition (``/metrics``), for a HorizontalPodAutoscaler.

``tenantry_scaling_recommended_replicas{deployment}`` is the replicas the performance manager's
advice asked for in the autoscaler's last round (:class:`~tenantry.performance.AutoScaler`,
whether it applies the advice itself, ``AUTO_SCALING_ENABLED``, or only publishes it,
``TENANTRY_SCALING_ADVICE_METRIC``). Only the process that leads the autoscaling (the
Deployment's advisory lock) sets it, so across the pods one series carries it; a round without
advice to give (no load history, the Deployment scaled to zero) removes it, and an HPA reading
it through the Prometheus adapter then holds the replicas where they are, as it does whenever
its metric is missing. ``deploy/kubernetes/hpa.yaml`` has the HPA and the adapter's rule.

With several worker processes the gauge's multiprocess mode is ``livemax``: the leading
worker's value while it lives (the others never set it).
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Gauge

__all__ = ["RECOMMENDED_REPLICAS", "ScalingMetrics"]

#: The gauge's name in the exposition.
RECOMMENDED_REPLICAS: Final = "tenantry_scaling_recommended_replicas"


class ScalingMetrics:
    """The advice's gauge in ``registry`` (see the module docstring)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.recommended = Gauge(
            RECOMMENDED_REPLICAS,
            "Replicas the scaling advice asks for (the autoscaler's last round, the leader's)",
            ["deployment"],
            registry=registry,
            multiprocess_mode="livemax",
        )
        self._set: set[str] = set()

    def advised(self, deployment: str, replicas: int) -> None:
        """The advice of a round: ``replicas`` for ``deployment``."""
        self.recommended.labels(deployment).set(replicas)
        self._set.add(deployment)

    def withdrawn(self, deployment: str) -> None:
        """No advice for ``deployment`` now: its series leaves the exposition."""
        if deployment in self._set:
            self._set.discard(deployment)
            self.recommended.remove(deployment)

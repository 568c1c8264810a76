"""Scaling advice: the Kubernetes HorizontalPodAutoscaler's rule, applied to a load forecast.

The HPA (autoscaling/v2) computes ``desired = ceil(current * metric / target)``, leaves the
replica count alone while ``|metric / target - 1| <= tolerance`` (0.1 by default), stabilises
the recommendation over a window per direction (scale-down: the highest recommendation of the
last 300 s, so a brief dip never removes pods; scale-up: 0 s, so a rise adds them at once), and
keeps the result within ``[min_replicas, max_replicas]``. :class:`ScalingAdvisor` does the same
arithmetic, in the same order, on the *forecast* peak over a lead time (the pods' start-up time),
so pods are asked for before the load arrives rather than after; :func:`hpa_manifest_fragment`
gives the equivalent HPA spec for a cluster that scales on the live metric.

The metric is a per-pod average (``AverageValue``: requests per second per pod, say): the load
``L`` on ``current`` pods is a metric of ``L / current``, so the rule reads
``ceil(current * (L / current) / target) = ceil(L / target)`` outside the tolerance. The HPA's
rate-limiting policies (``behavior.*.policies``) are not modelled: their defaults allow doubling
(or +4 pods) per 15 s up and removing all surplus pods per 15 s down.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from tenantry.errors import InvalidInput

__all__ = [
    "DEFAULT_SCALE_DOWN_WINDOW_S",
    "DEFAULT_TOLERANCE",
    "MAX_REPLICAS",
    "Advice",
    "ScalingAdvisor",
    "ScalingSpec",
    "desired_replicas",
    "hpa_manifest_fragment",
    "hpa_manifest_yaml",
]

DEFAULT_TOLERANCE = 0.1
DEFAULT_SCALE_DOWN_WINDOW_S = 300
MAX_WINDOW_S = 3600  # the HPA's limit on stabilizationWindowSeconds
MAX_REPLICAS = 100_000


def desired_replicas(current: int, metric: float, target: float, tolerance: float) -> int:
    """The HPA's raw recommendation for a per-pod ``metric``: ``ceil(current * metric / target)``,
    or ``current`` while the ratio is within ``tolerance`` of 1 (before stabilisation and the
    min/max bounds). The ratio is a float, as in the HPA: 110 against 100 is 1.1000000000000001,
    just outside a 0.1 tolerance."""
    if isinstance(current, bool) or not isinstance(current, int) or current < 1:
        raise InvalidInput("the current replica count must be an integer of at least 1")
    if not (math.isfinite(metric) and metric >= 0):
        raise InvalidInput("the metric must be a finite number, not negative")
    if not (math.isfinite(target) and target > 0):
        raise InvalidInput("the target must be a positive number")
    return _from_ratio(current, metric / target, tolerance)


def _from_ratio(current: int, ratio: float, tolerance: float) -> int:
    if abs(1.0 - ratio) <= tolerance:
        return current
    return math.ceil(ratio * current)


@dataclass(frozen=True, slots=True)
class ScalingSpec:
    """An HPA's settings: replica bounds, the per-pod target of the metric, tolerance, windows."""

    min_replicas: int
    max_replicas: int
    target_per_pod: float
    tolerance: float = DEFAULT_TOLERANCE
    scale_up_window_s: int = 0
    scale_down_window_s: int = DEFAULT_SCALE_DOWN_WINDOW_S

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas <= MAX_REPLICAS:
            raise InvalidInput(f"need 1 <= min_replicas <= max_replicas <= {MAX_REPLICAS}")
        if not (math.isfinite(self.target_per_pod) and self.target_per_pod > 0):
            raise InvalidInput("target_per_pod must be a positive number")
        if not (math.isfinite(self.tolerance) and 0 <= self.tolerance < 1):
            raise InvalidInput("tolerance must be at least 0 and less than 1")
        for window in (self.scale_up_window_s, self.scale_down_window_s):
            if not 0 <= window <= MAX_WINDOW_S:
                raise InvalidInput(f"stabilization windows are 0 to {MAX_WINDOW_S} seconds")


@dataclass(frozen=True, slots=True)
class Advice:
    """One recommendation: the replicas to run, and how it was reached."""

    replicas: int
    raw: int  # the rule's recommendation before stabilisation and bounds
    stabilized: int  # after the windows, before min/max
    metric: float  # the per-pod metric the rule used (the forecast peak over current replicas)
    peak_load: float
    reason: str


class ScalingAdvisor:
    """Stateful HPA arithmetic: keeps the recent raw recommendations its windows look back on.

    Timestamps are seconds on any monotonic clock, non-decreasing from call to call."""

    def __init__(self, spec: ScalingSpec) -> None:
        self.spec = spec
        self._history: deque[tuple[float, int]] = deque()
        self._last_at = -math.inf

    def recommend(self, now: float, current: int, load: float) -> Advice:
        """The advice for a total ``load`` (the metric summed over pods) on ``current`` pods."""
        spec = self.spec
        if not math.isfinite(now) or now < self._last_at:
            raise InvalidInput("timestamps must be finite and must not go back")
        if not (math.isfinite(load) and load >= 0):
            raise InvalidInput("the load must be a finite number, not negative")
        if isinstance(current, bool) or not isinstance(current, int) or current < 1:
            raise InvalidInput("the current replica count must be an integer of at least 1")
        metric = load / current
        # the HPA's order of operations for a Pods metric (the float rounding included)
        raw = _from_ratio(current, load / (spec.target_per_pod * current), spec.tolerance)
        self._last_at = now
        # as the HPA: the lowest recommendation of the scale-up window bounds a rise, the
        # highest of the scale-down window bounds a fall; the current count sits between them
        horizon = max(spec.scale_up_window_s, spec.scale_down_window_s)
        while self._history and self._history[0][0] <= now - horizon:
            self._history.popleft()
        if not self._history and spec.scale_down_window_s > 0:
            # as the HPA does for an autoscaler it has not seen: the current count counts as a
            # recommendation, so a fresh advisor does not scale down before its window passed
            self._history.append((now, current))
        up, down = raw, raw
        for at, past in self._history:
            if at > now - spec.scale_up_window_s:
                up = min(up, past)
            if at > now - spec.scale_down_window_s:
                down = max(down, past)
        self._history.append((now, raw))
        stabilized = min(max(current, up), down)
        replicas = min(max(stabilized, spec.min_replicas), spec.max_replicas)
        if replicas != stabilized:
            bound = "max" if replicas < stabilized else "min"
            reason = f"bounded by {bound}_replicas"
        elif stabilized != raw:
            window = "scale-down" if stabilized > raw else "scale-up"
            reason = f"held by the {window} window"
        elif raw == current:
            reason = "within tolerance" if load else "no load"
        else:
            reason = "scale up" if raw > current else "scale down"
        return Advice(replicas, raw, stabilized, metric, load, reason)

    def advise(
        self,
        now: float,
        current: int,
        forecast: Sequence[float],
        *,
        step_s: float,
        lead_s: float,
    ) -> Advice:
        """The advice for the peak of ``forecast`` (total load per step of ``step_s`` seconds,
        the first step starting now) over the next ``lead_s`` seconds: the pods it asks for are
        ready when that load arrives, if they start within ``lead_s``."""
        if not (math.isfinite(step_s) and step_s > 0):
            raise InvalidInput("step_s must be a positive number of seconds")
        if not (math.isfinite(lead_s) and lead_s >= 0):
            raise InvalidInput("lead_s must be a number of seconds, not negative")
        steps = max(1, math.ceil(lead_s / step_s))
        if len(forecast) < steps:
            raise InvalidInput(f"the forecast covers {len(forecast)} steps; the lead needs {steps}")
        return self.recommend(now, current, max(forecast[:steps]))


def hpa_manifest_fragment(
    spec: ScalingSpec,
    *,
    name: str,
    deployment: str,
    metric_name: str,
    namespace: str | None = None,
) -> dict[str, Any]:
    """The autoscaling/v2 HorizontalPodAutoscaler that applies ``spec`` to the live metric.

    The metric is a ``Pods`` metric (a custom metric averaged over the deployment's pods, e.g.
    ``http_requests_per_second`` from the Prometheus adapter) with an ``AverageValue`` target.
    The tolerance is not in the fragment unless it differs from the cluster default (0.1): the
    ``behavior.*.tolerance`` field needs the HPAConfigurableTolerance feature gate."""
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    target = spec.target_per_pod
    quantity = str(int(target)) if float(target).is_integer() else f"{round(target * 1000)}m"
    up: dict[str, Any] = {"stabilizationWindowSeconds": spec.scale_up_window_s}
    down: dict[str, Any] = {"stabilizationWindowSeconds": spec.scale_down_window_s}
    if spec.tolerance != DEFAULT_TOLERANCE:
        up["tolerance"] = down["tolerance"] = str(spec.tolerance)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicas": spec.min_replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": metric_name},
                        "target": {"type": "AverageValue", "averageValue": quantity},
                    },
                }
            ],
            "behavior": {"scaleUp": up, "scaleDown": down},
        },
    }


def hpa_manifest_yaml(fragment: dict[str, Any]) -> str:
    """The fragment as YAML (keys in the order Kubernetes' documentation writes them)."""
    return yaml.safe_dump(fragment, sort_keys=False)

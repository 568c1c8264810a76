"""Scaling advice (tenantry.performance.scaling): the HPA rule, its tolerance, bounds and
stabilisation windows, as the Kubernetes documentation states them, and the HPA fragment."""

from __future__ import annotations

import pytest
import yaml

from tenantry.errors import InvalidInput
from tenantry.performance.scaling import (
    ScalingAdvisor,
    ScalingSpec,
    desired_replicas,
    hpa_manifest_fragment,
    hpa_manifest_yaml,
)


@pytest.mark.parametrize(
    ("current", "metric", "target", "expected"),
    [
        (50, 90, 75, 60),  # the v1.33 blog post: 50 replicas at 90 % CPU against a 75 % target
        (1, 200, 100, 2),  # the HPA page: 200m against 100m doubles the replicas
        (4, 50, 100, 2),  # 50m against 100m halves them
        (10, 105, 100, 10),  # within the 10 % tolerance: unchanged
        (10, 110, 100, 11),  # 110 / 100 is 1.1000000000000001 in floats, as in the HPA's Go
        (10, 125, 100, 10),  # exactly at a tolerance of 0.25 (below): unchanged
        (10, 111, 100, 12),  # just outside: ceil(11.1)
        (10, 89, 100, 9),  # below: ceil(8.9)
        (3, 0, 100, 0),  # no load at all: the rule says 0 (min_replicas keeps one)
    ],
)
def test_the_rule_matches_the_kubernetes_documentation(
    current: int, metric: float, target: float, expected: int
) -> None:
    tolerance = 0.25 if metric == 125 else 0.1
    assert desired_replicas(current, metric, target, tolerance) == expected


def test_tolerance_is_configurable() -> None:
    assert desired_replicas(10, 105, 100, 0.0) == 11
    assert desired_replicas(10, 130, 100, 0.5) == 10


def test_min_and_max_replicas_bound_the_advice() -> None:
    advisor = ScalingAdvisor(ScalingSpec(min_replicas=2, max_replicas=8, target_per_pod=100))
    high = advisor.recommend(0, current=4, load=2000)
    assert (high.raw, high.replicas, high.reason) == (20, 8, "bounded by max_replicas")
    advisor = ScalingAdvisor(ScalingSpec(2, 8, 100, scale_down_window_s=0))
    low = advisor.recommend(0, current=4, load=10)
    assert (low.raw, low.replicas, low.reason) == (1, 2, "bounded by min_replicas")


def test_scale_up_is_immediate_and_scale_down_keeps_the_window_highest() -> None:
    advisor = ScalingAdvisor(ScalingSpec(min_replicas=1, max_replicas=50, target_per_pod=100))
    assert advisor.recommend(0, current=4, load=1000).replicas == 10  # up at once
    dip = advisor.recommend(60, current=10, load=400)
    assert (dip.raw, dip.replicas, dip.reason) == (4, 10, "held by the scale-down window")
    assert advisor.recommend(200, current=10, load=700).replicas == 10  # still held by 10
    # at 300 s the recommendation of t=0 is exactly 300 s old: outside the window
    later = advisor.recommend(300, current=10, load=400)
    assert (later.replicas, later.reason) == (7, "held by the scale-down window")  # 7 from t=200
    assert advisor.recommend(501, current=7, load=400).replicas == 4
    assert advisor.recommend(502, current=4, load=3000).replicas == 30  # up again, at once


def test_a_scale_up_window_takes_the_lowest_recommendation() -> None:
    spec = ScalingSpec(1, 50, 100, scale_up_window_s=60, scale_down_window_s=0)
    advisor = ScalingAdvisor(spec)
    assert advisor.recommend(0, current=4, load=400).replicas == 4
    rise = advisor.recommend(30, current=4, load=1000)
    assert (rise.raw, rise.replicas, rise.reason) == (10, 4, "held by the scale-up window")
    assert advisor.recommend(61, current=4, load=1000).replicas == 10


def test_advice_uses_the_forecast_peak_within_the_lead_time() -> None:
    advisor = ScalingAdvisor(ScalingSpec(1, 50, 100))
    forecast = [300.0, 350.0, 900.0, 2000.0]  # a peak coming in 3 steps of 60 s
    soon = advisor.advise(0, 4, forecast, step_s=60, lead_s=180)  # pods start in 3 minutes
    assert (soon.peak_load, soon.replicas) == (900.0, 9)
    late = ScalingAdvisor(ScalingSpec(1, 50, 100)).advise(0, 4, forecast, step_s=60, lead_s=60)
    # 300 / 4 pods = 75 a pod: 3 pods would do, but a fresh advisor holds the current count
    # for its scale-down window, as the HPA does
    assert (late.peak_load, late.raw, late.replicas) == (300.0, 3, 4)
    assert late.reason == "held by the scale-down window"
    with pytest.raises(InvalidInput, match="forecast covers"):
        advisor.advise(1, 4, forecast, step_s=60, lead_s=600)


@pytest.mark.parametrize(
    "spec",
    [
        dict(min_replicas=0, max_replicas=3, target_per_pod=1.0),
        dict(min_replicas=4, max_replicas=3, target_per_pod=1.0),
        dict(min_replicas=1, max_replicas=3, target_per_pod=0.0),
        dict(min_replicas=1, max_replicas=3, target_per_pod=1.0, tolerance=1.5),
        dict(min_replicas=1, max_replicas=3, target_per_pod=1.0, scale_down_window_s=3601),
    ],
)
def test_a_bad_spec_is_refused(spec: dict[str, float]) -> None:
    with pytest.raises(InvalidInput):
        ScalingSpec(**spec)  # type: ignore[arg-type]


def test_bad_calls_are_refused() -> None:
    advisor = ScalingAdvisor(ScalingSpec(1, 3, 1.0))
    advisor.recommend(10, 1, 1.0)
    with pytest.raises(InvalidInput, match="go back"):
        advisor.recommend(5, 1, 1.0)
    with pytest.raises(InvalidInput, match="load"):
        advisor.recommend(11, 1, float("nan"))
    with pytest.raises(InvalidInput, match="replica"):
        advisor.recommend(12, 0, 1.0)


def test_the_manifest_fragment_is_an_autoscaling_v2_hpa() -> None:
    spec = ScalingSpec(2, 20, 50.5, scale_down_window_s=600)
    fragment = hpa_manifest_fragment(
        spec, name="api", deployment="api", metric_name="http_requests_per_second", namespace="t"
    )
    assert yaml.safe_load(hpa_manifest_yaml(fragment)) == fragment
    assert fragment["apiVersion"] == "autoscaling/v2"
    assert fragment["kind"] == "HorizontalPodAutoscaler"
    assert fragment["metadata"] == {"name": "api", "namespace": "t"}
    body = fragment["spec"]
    assert set(body) == {"scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior"}
    assert body["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    assert (body["minReplicas"], body["maxReplicas"]) == (2, 20)
    (metric,) = body["metrics"]
    assert metric == {
        "type": "Pods",
        "pods": {
            "metric": {"name": "http_requests_per_second"},
            "target": {"type": "AverageValue", "averageValue": "50500m"},
        },
    }
    assert body["behavior"] == {
        "scaleUp": {"stabilizationWindowSeconds": 0},
        "scaleDown": {"stabilizationWindowSeconds": 600},
    }
    tolerant = hpa_manifest_fragment(
        ScalingSpec(1, 2, 100, tolerance=0.05), name="a", deployment="a", metric_name="m"
    )
    assert tolerant["spec"]["behavior"]["scaleDown"]["tolerance"] == "0.05"
    assert tolerant["spec"]["metrics"][0]["pods"]["target"]["averageValue"] == "100"
    assert "namespace" not in tolerant["metadata"]

"""Performance: the process's signals sampled into the series, bottlenecks named with their
evidence, trends over hours, bounded optimization rounds on live knobs, and scaling advice from
load forecasts (the Kubernetes HPA rule, :mod:`~tenantry.performance.scaling`)."""

from tenantry.performance.detection import Bottleneck, Thresholds
from tenantry.performance.manager import Measure, PerformanceManager, PerformanceManagerFactory
from tenantry.performance.optimizer import Measurement, OptimizationStrategy
from tenantry.performance.scaling import (
    Advice,
    ScalingAdvisor,
    ScalingSpec,
    desired_replicas,
    hpa_manifest_fragment,
    hpa_manifest_yaml,
)
from tenantry.performance.schemas import (
    CurrentPerformance,
    OptimizationResult,
    PerformanceAnalytics,
)
from tenantry.performance.trends import Trend

__all__ = [
    "Advice",
    "Bottleneck",
    "CurrentPerformance",
    "Measure",
    "Measurement",
    "OptimizationResult",
    "OptimizationStrategy",
    "PerformanceAnalytics",
    "PerformanceManager",
    "PerformanceManagerFactory",
    "ScalingAdvisor",
    "ScalingSpec",
    "Thresholds",
    "Trend",
    "desired_replicas",
    "hpa_manifest_fragment",
    "hpa_manifest_yaml",
]

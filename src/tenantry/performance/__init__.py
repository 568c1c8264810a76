"""Performance: the process's signals sampled into the series, bottlenecks named with their
evidence, trends over hours, bounded optimization rounds on live knobs, and scaling advice from
load forecasts (the Kubernetes HPA rule, :mod:`~tenantry.performance.scaling`), applied to the
service's own Deployment when ``AUTO_SCALING_ENABLED`` (:mod:`~tenantry.performance.autoscaler`)."""

from tenantry.performance.autoscaler import AutoScaler, ScaleRound
from tenantry.performance.detection import Bottleneck, Thresholds
from tenantry.performance.kubernetes import DeploymentScale, Scale
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
    AutoScalerStatus,
    CurrentPerformance,
    OptimizationResult,
    PerformanceAnalytics,
)
from tenantry.performance.trends import Trend

__all__ = [
    "Advice",
    "AutoScaler",
    "AutoScalerStatus",
    "Bottleneck",
    "CurrentPerformance",
    "DeploymentScale",
    "Measure",
    "Measurement",
    "OptimizationResult",
    "OptimizationStrategy",
    "PerformanceAnalytics",
    "PerformanceManager",
    "PerformanceManagerFactory",
    "Scale",
    "ScaleRound",
    "ScalingAdvisor",
    "ScalingSpec",
    "Thresholds",
    "Trend",
    "desired_replicas",
    "hpa_manifest_fragment",
    "hpa_manifest_yaml",
]

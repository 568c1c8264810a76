"""Performance: the process's signals sampled into the series, bottlenecks named with their
evidence, trends over hours, and bounded optimization rounds on live knobs."""

from tenantry.performance.detection import Bottleneck, Thresholds
from tenantry.performance.manager import Measure, PerformanceManager, PerformanceManagerFactory
from tenantry.performance.optimizer import Measurement, OptimizationStrategy
from tenantry.performance.schemas import (
    CurrentPerformance,
    OptimizationResult,
    PerformanceAnalytics,
)
from tenantry.performance.trends import Trend

__all__ = [
    "Bottleneck",
    "CurrentPerformance",
    "Measure",
    "Measurement",
    "OptimizationResult",
    "OptimizationStrategy",
    "PerformanceAnalytics",
    "PerformanceManager",
    "PerformanceManagerFactory",
    "Thresholds",
    "Trend",
]

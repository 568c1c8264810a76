"""Scoring a load forecaster: the seasonal-naive baseline, MASE, and a rolling-origin backtest.

MASE follows Hyndman & Koehler (2006): each forecast error is divided by the in-sample MAE of
the one-step seasonal-naive forecast on that origin's training data, and the scaled errors are
averaged over every origin and step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tenantry.ai.forecast import Forecaster, fit
from tenantry.ai.series import Array, as_series, check_horizon, check_period
from tenantry.errors import InvalidInput

__all__ = ["Backtest", "backtest", "mase_scale", "seasonal_naive"]


def seasonal_naive(series: Sequence[float] | Array, period: int, horizon: int) -> Array:
    """The seasonal-naive forecast: each future bucket repeats the last observed one ``period``
    buckets (a whole number of cycles) before it; with ``period`` 1, the naive forecast."""
    y = as_series(series)
    check_period(period)
    check_horizon(horizon)
    if len(y) < period:
        raise InvalidInput(f"a seasonal-naive forecast needs a full period ({period} points)")
    last_cycle = y[len(y) - period :]
    return np.asarray([last_cycle[h % period] for h in range(horizon)], dtype=np.float64)


def mase_scale(series: Sequence[float] | Array, period: int) -> float:
    """The in-sample MAE of the one-step seasonal-naive forecast: MASE's denominator."""
    y = as_series(series)
    check_period(period)
    if len(y) <= period:
        raise InvalidInput(f"MASE needs more than one period ({period} points) of history")
    scale = float(np.mean(np.abs(y[period:] - y[:-period])))
    if scale == 0:
        raise InvalidInput("MASE is undefined on a series the seasonal-naive forecast fits exactly")
    return scale


@dataclass(frozen=True, slots=True)
class Backtest:
    """A rolling-origin evaluation: MASE of the model and of seasonal-naive, same origins."""

    origins: tuple[int, ...]
    horizon: int
    period: int
    mase: float
    baseline_mase: float
    fit_seconds: float
    forecast_seconds: float

    @property
    def improvement(self) -> float:
        """How much lower the model's MASE is than the baseline's (0.2: 20 % lower)."""
        return 1.0 - self.mase / self.baseline_mase


def backtest(
    series: Sequence[float] | Array,
    period: int,
    horizon: int,
    origins: int,
    *,
    step: int | None = None,
    fitter: Callable[[Array], Forecaster] | None = None,
) -> Backtest:
    """Fit at ``origins`` rolling origins and forecast ``horizon`` buckets from each.

    The last origin leaves exactly ``horizon`` points to forecast; earlier ones are ``step``
    (default ``horizon``) buckets apart; each fit sees every point before its origin. ``fitter``
    defaults to ``fit(history, period)``."""
    y = as_series(series)
    check_period(period)
    check_horizon(horizon)
    if isinstance(origins, bool) or not isinstance(origins, int) or not 1 <= origins <= 100:
        raise InvalidInput("origins must be an integer from 1 to 100")
    step = horizon if step is None else step
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise InvalidInput("step must be a positive integer")
    starts = [len(y) - horizon - step * k for k in reversed(range(origins))]
    if starts[0] <= period:
        raise InvalidInput(
            f"{origins} origins {step} apart, horizon {horizon}: the first origin has "
            f"{max(starts[0], 0)} points of history, not more than the period {period}"
        )
    do_fit = fitter or (lambda history: fit(history, period))
    model_errors, baseline_errors = [], []
    fit_s = forecast_s = 0.0
    for origin in starts:
        history, actual = y[:origin], y[origin : origin + horizon]
        scale = mase_scale(history, period)
        started = time.perf_counter()
        fitted = do_fit(history)
        fitted_at = time.perf_counter()
        predicted = np.asarray(fitted.forecast(horizon).mean)
        forecast_s += time.perf_counter() - fitted_at
        fit_s += fitted_at - started
        model_errors.append(np.abs(actual - predicted) / scale)
        baseline_errors.append(np.abs(actual - seasonal_naive(history, period, horizon)) / scale)
    return Backtest(
        tuple(starts),
        horizon,
        period,
        float(np.mean(model_errors)),
        float(np.mean(baseline_errors)),
        fit_s,
        forecast_s,
    )

"""The exponential smoothing forecaster (statsmodels' ETS) of one load series.

:func:`fit_ets` picks the richest model the history supports: Holt-Winters (additive error,
damped additive trend, additive seasonality of ``period`` buckets) when the series holds enough
cycles for statsmodels' heuristic initialisation (``max(2 * period, 10 + 2 * (period // 2))``
points), else Holt's damped trend (at least 10 points), else simple exponential smoothing (at
least :data:`MIN_POINTS`); fewer points than that is an :class:`~tenantry.errors.InvalidInput`.
Options: a Box-Cox transform and outlier cleaning (:mod:`tenantry.ai.series`), a cap on the
level's smoothing parameter, and smoothing parameters estimated for forecasts 1 to ``horizon``
steps ahead (:func:`_multistep`) rather than by the likelihood.

A fitted model is kept as JSON, never pickled (invariant 8): :meth:`FittedForecaster.to_params`
holds the configuration, the fitted smoothing parameters, the initial states and the training
values; :meth:`FittedForecaster.from_params` rebuilds the statsmodels model with those initial
states ("known" initialisation) and runs its smoother with those parameters, with no
optimisation, so the rebuilt model forecasts exactly what the fitted one did.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, special
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from tenantry.ai.series import (
    Array,
    BoxCox,
    as_series,
    check_horizon,
    check_lambda,
    check_period,
    clean_outliers,
    lambda_for,
    transform,
    untransform,
)
from tenantry.errors import InvalidInput

__all__ = [
    "FORMAT",
    "MIN_POINTS",
    "MIN_TREND_POINTS",
    "FittedForecaster",
    "Forecast",
    "ModelKind",
    "fit_ets",
    "min_seasonal_length",
]

FORMAT = "tenantry.forecast/1"
MIN_POINTS = 4
MIN_TREND_POINTS = 10

ModelKind = Literal["seasonal", "trend", "level"]


def min_seasonal_length(period: int) -> int:
    """The fewest points a seasonal fit needs: two cycles, and ten deseasonalised values."""
    return max(2 * period, 10 + 2 * (period // 2))


@dataclass(frozen=True, slots=True)
class Forecast:
    """Point forecasts for the next ``len(mean)`` buckets, and a prediction interval.

    ``lower``/``upper`` bound the central ``level`` (0.95 by default) of the predictive
    distribution, from statsmodels' analytic ETS variances (mapped back through the Box-Cox
    transform when one was used, where the point forecast is then the median)."""

    mean: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    level: float


def _kind_for(n: int, period: int) -> ModelKind:
    if n < MIN_POINTS:
        raise InvalidInput(f"a forecast needs at least {MIN_POINTS} points; the series has {n}")
    if period > 1 and n >= min_seasonal_length(period):
        return "seasonal"
    return "trend" if n >= MIN_TREND_POINTS else "level"


def _sigmoid(x: Array) -> Array:
    return np.asarray(special.expit(x), dtype=np.float64)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _start_vector(
    start: dict[str, float], *, has_trend: bool, seasonal: bool, damped: bool
) -> Array:
    """The likelihood's parameters in :func:`_multistep`'s unconstrained coordinates."""
    alpha = start["smoothing_level"]
    u = [alpha]
    if has_trend:
        u.append(start["smoothing_trend"] / alpha)
    if seasonal:
        u.append(start["smoothing_seasonal"] / max(1 - alpha, 1e-6))
    if damped:
        u.append((start["damping_trend"] - 0.8) / 0.18)
    return np.asarray([_logit(v) for v in u], dtype=np.float64)


def _multistep(
    model: ETSModel, z: Array, start: dict[str, float], horizon: int
) -> dict[str, float]:
    """Smoothing parameters that minimise the in-sample mean absolute error of the forecasts 1
    to ``horizon`` steps ahead (at most 24 of those steps, evenly spread, from at most about
    2,000 origins) from the points of the series (Nelder-Mead from the likelihood estimate).

    The likelihood weighs one-step errors only, and a level that follows every deviation at
    once serves the next bucket well and the next day badly. The parameters keep ETS's usual
    region (0 < beta <= alpha, 0 <= gamma <= 1 - alpha, 0.8 <= phi <= 0.98) by construction."""
    names = list(model.param_names)
    period = int(model.seasonal_periods or 1)
    seasonal = "smoothing_seasonal" in names
    has_trend = "smoothing_trend" in names
    damped = "damping_trend" in names
    n, lag = len(z), period if seasonal else 0
    first = max(lag, 10)
    if n - horizon - 1 <= first:
        return start
    # the cost bounded: at most 24 of the horizon's steps, from at most ~2,000 origins
    steps = sorted({round(float(h)) for h in np.linspace(1, horizon, min(horizon, 24))})
    stride = max(1, (n - first) // 2000)

    def params_of(x: Array) -> dict[str, float]:
        u = _sigmoid(x)
        alpha = 1e-4 + (0.9999 - 1e-4) * float(u[0])
        out = {"smoothing_level": alpha}
        i = 1
        if has_trend:
            out["smoothing_trend"] = alpha * float(u[i])
            i += 1
        if seasonal:
            out["smoothing_seasonal"] = (1 - alpha) * float(u[i])
            i += 1
        if damped:
            out["damping_trend"] = 0.8 + 0.18 * float(u[i])
        return out

    def loss(x: Array) -> float:
        params = params_of(x)
        _, states = model.smooth([params[k] for k in names], return_raw=True)
        states = np.asarray(states)
        level = states[:, 0]
        trend = states[:, 1] if has_trend else np.zeros(n)
        season = states[:, -1] if seasonal else np.zeros(n)
        phi = params.get("damping_trend", 1.0)
        total, count = 0.0, 0
        for h in steps:
            factor = h if phi == 1 else phi * (1 - phi**h) / (1 - phi)
            t = np.arange(first, n - h, stride)
            back = period * math.ceil(h / period) if seasonal else 0
            predicted = level[t] + factor * trend[t] + (season[t + h - back] if seasonal else 0)
            errors = np.abs(z[t + h] - predicted)
            total += float(errors.sum())
            count += len(t)
        return total / count

    x0 = _start_vector(start, has_trend=has_trend, seasonal=seasonal, damped=damped)
    best = optimize.minimize(
        loss, x0, method="Nelder-Mead", options={"maxfev": 300, "xatol": 1e-3, "fatol": 1e-7}
    )
    x = best.x if best.fun < loss(x0) else x0
    return params_of(np.asarray(x, dtype=np.float64))


def _model(
    z: Array,
    kind: ModelKind,
    period: int,
    damped: bool,
    initial: Mapping[str, Any] | None,
    *,
    max_alpha: float | None = None,
) -> ETSModel:
    trend = "add" if kind != "level" else None
    seasonal = "add" if kind == "seasonal" else None
    options: dict[str, Any] = {
        "error": "add",
        "trend": trend,
        "damped_trend": damped and trend is not None,
        "seasonal": seasonal,
        "seasonal_periods": period if seasonal else None,
    }
    if initial is not None:
        options |= {
            "initialization_method": "known",
            "initial_level": initial["level"],
            "initial_trend": initial["trend"] if trend else None,
            "initial_seasonal": np.asarray(initial["seasonal"]) if seasonal else None,
        }
    elif len(z) >= MIN_TREND_POINTS:
        options["initialization_method"] = "heuristic"
    else:
        options["initialization_method"] = "estimated"
    if max_alpha is not None and initial is None:
        options["bounds"] = {"smoothing_level": (1e-4, max_alpha)}
    # a pandas Series: statsmodels' get_prediction labels its rows by the data's index
    return ETSModel(pd.Series(z), **options)


@dataclass(frozen=True, slots=True)
class FittedForecaster:
    """An ETS model fitted to one series; :meth:`forecast` predicts what follows it."""

    kind: ModelKind
    period: int
    damped: bool
    boxcox_lambda: float | None
    params: dict[str, float]
    initial: dict[str, Any]
    series: tuple[float, ...]
    cleaned: tuple[int, ...]
    _results: Any

    @property
    def aic(self) -> float:
        return float(self._results.aic)

    def forecast(self, horizon: int, *, level: float = 0.95) -> Forecast:
        """The next ``horizon`` buckets' point forecasts and central ``level`` intervals."""
        check_horizon(horizon)
        if not 0 < level < 1:
            raise InvalidInput("level must be between 0 and 1")
        n = len(self.series)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            frame = self._results.get_prediction(start=n, end=n + horizon - 1).summary_frame(
                alpha=1 - level
            )
        mean = untransform(np.asarray(frame["mean"], dtype=np.float64), self.boxcox_lambda)
        lower = untransform(np.asarray(frame["pi_lower"], dtype=np.float64), self.boxcox_lambda)
        upper = untransform(np.asarray(frame["pi_upper"], dtype=np.float64), self.boxcox_lambda)
        return Forecast(
            tuple(map(float, mean)), tuple(map(float, lower)), tuple(map(float, upper)), level
        )

    def to_params(self) -> dict[str, Any]:
        """Everything :meth:`from_params` needs, as JSON-serialisable values."""
        return {
            "format": FORMAT,
            "kind": self.kind,
            "period": self.period,
            "damped": self.damped,
            "boxcox_lambda": self.boxcox_lambda,
            "params": dict(self.params),
            "initial": {
                "level": self.initial["level"],
                "trend": self.initial["trend"],
                "seasonal": list(self.initial["seasonal"]),
            },
            "series": list(self.series),
            "cleaned": list(self.cleaned),
        }

    @classmethod
    def from_params(cls, data: Mapping[str, Any]) -> FittedForecaster:
        """Rebuild a forecaster from :meth:`to_params` (checked: a bad document is InvalidInput)."""
        try:
            if data["format"] != FORMAT:
                raise InvalidInput(f"unknown forecaster format {data['format']!r}")
            kind = data["kind"]
            if kind not in ("seasonal", "trend", "level"):
                raise InvalidInput(f"unknown model kind {kind!r}")
            period = check_period(data["period"])
            damped = bool(data["damped"])
            lam = data["boxcox_lambda"]
            lam = None if lam is None else check_lambda(float(lam))
            series = as_series(data["series"])
            if lam is not None and np.any(series <= 0):
                raise InvalidInput("a Box-Cox transform needs a positive series")
            cleaned = tuple(int(i) for i in data.get("cleaned", ()))
            if not all(0 <= i < len(series) for i in cleaned):
                raise InvalidInput("the cleaned indices must be positions in the series")
            if _kind_for(len(series), period if kind == "seasonal" else 1) != kind:
                raise InvalidInput(f"a {kind} model does not fit {len(series)} points")
            raw = data["initial"]
            seasonal_states = [float(v) for v in raw["seasonal"]]
            initial: dict[str, Any] = {
                "level": float(raw["level"]),
                "trend": None if raw["trend"] is None else float(raw["trend"]),
                "seasonal": seasonal_states,
            }
            if kind == "seasonal" and len(seasonal_states) != period:
                raise InvalidInput("the initial seasonal states must be one per period")
            model = _model(transform(series, lam), kind, period, damped, initial)
            params = {name: float(data["params"][name]) for name in model.param_names}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"not a forecaster's parameters: {exc}") from exc
        if not all(0 <= v <= 1 for v in params.values()):  # NaN fails too
            raise InvalidInput("the smoothing and damping parameters must be within [0, 1]")
        results = model.smooth([params[name] for name in model.param_names])
        return cls(
            kind, period, damped, lam, params, initial, tuple(map(float, series)), cleaned, results
        )


def fit_ets(
    y: Array,
    period: int,
    *,
    damped: bool = True,
    boxcox: BoxCox = False,
    max_alpha: float | None = None,
    clean: bool = False,
    horizon: int | None = None,
) -> FittedForecaster:
    """The ETS model for ``y`` (already checked by :func:`tenantry.ai.fit`, whose options these
    are; see there and the module's docstring)."""
    kind = _kind_for(len(y), period)
    cleaned: tuple[int, ...] = ()
    if clean and kind == "seasonal":
        y, cleaned = clean_outliers(y, period)
    lam = lambda_for(y, boxcox, period)
    z = transform(y, lam)
    model = _model(z, kind, period, damped, None, max_alpha=max_alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        results = model.fit(disp=False)
    fitted = np.asarray(results.params, dtype=np.float64)
    params = {k: float(v) for k, v in zip(model.param_names, fitted, strict=True)}
    trend = getattr(results, "initial_trend", None) if kind != "level" else None
    seasonal = getattr(results, "initial_seasonal", None) if kind == "seasonal" else None
    initial = {
        "level": float(results.initial_level),
        "trend": None if trend is None else float(trend),
        "seasonal": [] if seasonal is None else [float(v) for v in np.ravel(seasonal)],
    }
    # the smoothing parameters alone rebuild the model from the known initial states
    smoothing = {k: v for k, v in params.items() if not k.startswith("initial_")}
    if horizon is not None and kind != "level":
        smoothing = _multistep(model, z, smoothing, check_horizon(horizon))
        results = model.smooth([smoothing[k] for k in model.param_names])
    rebuilt = FittedForecaster.from_params(
        {
            "format": FORMAT,
            "kind": kind,
            "period": period,
            "damped": damped,
            "boxcox_lambda": lam,
            "params": smoothing,
            "initial": initial,
            "series": [float(v) for v in y],
            "cleaned": list(cleaned),
        }
    )
    return rebuilt

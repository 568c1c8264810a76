"""Load forecasts: exponential smoothing (statsmodels' ETS), a seasonal-naive baseline, and a
rolling-origin backtest that scores both by MASE.

:func:`fit` picks the richest model the history supports: Holt-Winters (additive error, damped
additive trend, additive seasonality of ``period`` buckets) when the series holds enough cycles
for statsmodels' heuristic initialisation (``max(2 * period, 10 + 2 * (period // 2))`` points),
else Holt's damped trend (at least 10 points), else simple exponential smoothing (at least
:data:`MIN_POINTS`); fewer points than that is an :class:`~tenantry.errors.InvalidInput`. An
optional Box-Cox transform (for positive series: a log-like one makes the daily swing scale with
the level, as load does) is applied before the fit and undone on the forecast.

A fitted model is kept as JSON, never pickled (invariant 8): :meth:`FittedForecaster.to_params`
holds the configuration, the fitted smoothing parameters, the initial states and the training
values; :meth:`FittedForecaster.from_params` rebuilds the statsmodels model with those initial
states ("known" initialisation) and runs its smoother with those parameters, with no
optimisation, so the rebuilt model forecasts exactly what the fitted one did.

With ``periods`` (say ``(24, 168)``: a daily and a weekly pattern of hourly buckets), :func:`fit`
decomposes the series instead with statsmodels' MSTL (multiple seasonal-trend decomposition by
LOESS) over the periods whose history holds more than two cycles (MSTL drops the others), and
falls back to the ETS rule on ``period`` when none does. Each seasonal component is smoothed
across cycles with a local mean over nearly the whole history (an average of several weeks, not
the last one alone); the forecast repeats each component's last cycle and adds the forecast of
the seasonally adjusted series (trend and remainder) by damped Holt, as statsmodels'
``STLForecast`` does with one period. It is kept as JSON too: the components' last cycles and
the adjusted series' ETS document (:class:`MultiSeasonalForecaster`).

MASE follows Hyndman & Koehler (2006): each forecast error is divided by the in-sample MAE of
the one-step seasonal-naive forecast on that origin's training data, and the scaled errors are
averaged over every origin and step.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize, special, stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.seasonal import MSTL

from tenantry.errors import InvalidInput

__all__ = [
    "FORMAT",
    "MAX_HORIZON",
    "MAX_PERIOD",
    "MAX_SERIES_LENGTH",
    "MIN_POINTS",
    "MSTL_FORMAT",
    "Backtest",
    "FittedForecaster",
    "Forecast",
    "Forecaster",
    "ModelKind",
    "MultiSeasonalForecaster",
    "backtest",
    "fit",
    "forecaster_from_params",
    "mase_scale",
    "min_seasonal_length",
    "seasonal_naive",
    "usable_periods",
]

FORMAT = "tenantry.forecast/1"
MSTL_FORMAT = "tenantry.forecast-mstl/1"
MAX_SERIES_LENGTH = 20_000
MAX_HORIZON = 2_000
MAX_PERIOD = 2_016  # a week of 5-minute buckets
MIN_POINTS = 4
MIN_TREND_POINTS = 10
#: A point is an outlier when its deviation is more than this many robust standard deviations.
CLEAN_THRESHOLD = 5.0
#: The newest buckets are never cleaned: a surge still under way is load to plan for.
CLEAN_KEEP_RECENT = 3
#: Box-Cox lambdas are estimated, then kept in this range (0: the log; 1: no transform).
BOXCOX_RANGE = (0.0, 1.0)
#: MSTL's seasonal smoother: a LOESS window of this many cycles (odd), of degree 0 (a local
#: mean): on histories of a few dozen cycles nearly every cycle weighs in, so a component is an
#: average pattern rather than the last cycle's, and its end is not extrapolated by a slope.
MSTL_SEASONAL_WINDOW = 101
MAX_PERIODS = 4

ModelKind = Literal["seasonal", "trend", "level"]
Array = npt.NDArray[np.float64]


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


def _as_series(values: Sequence[float] | Array, *, what: str = "series") -> Array:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"the {what} must be a sequence of numbers") from exc
    if array.ndim != 1:
        raise InvalidInput(f"the {what} must be one-dimensional")
    if len(array) > MAX_SERIES_LENGTH:
        raise InvalidInput(f"the {what} has {len(array)} points; at most {MAX_SERIES_LENGTH}")
    if not np.all(np.isfinite(array)):
        raise InvalidInput(f"the {what} holds a value that is not finite (NaN or infinity)")
    return array


def _check_period(period: int) -> int:
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= MAX_PERIOD:
        raise InvalidInput(f"period must be an integer from 1 to {MAX_PERIOD}")
    return period


def _check_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= MAX_HORIZON:
        raise InvalidInput(f"horizon must be an integer from 1 to {MAX_HORIZON}")
    return horizon


def _kind_for(n: int, period: int) -> ModelKind:
    if n < MIN_POINTS:
        raise InvalidInput(f"a forecast needs at least {MIN_POINTS} points; the series has {n}")
    if period > 1 and n >= min_seasonal_length(period):
        return "seasonal"
    return "trend" if n >= MIN_TREND_POINTS else "level"


def _boxcox_lambda(y: Array) -> float:
    """The maximum-likelihood Box-Cox lambda of ``y``, kept in :data:`BOXCOX_RANGE`."""
    low, high = BOXCOX_RANGE
    if np.ptp(y) == 0:
        return 1.0
    return float(np.clip(stats.boxcox_normmax(y, brack=(low, high), method="mle"), low, high))


def _check_lambda(lam: float) -> float:
    if not -1 <= lam <= 2:  # NaN fails too
        raise InvalidInput("a Box-Cox lambda must be within [-1, 2]")
    return lam


def _transform(y: Array, lam: float | None) -> Array:
    return y if lam is None else np.asarray(special.boxcox(y, lam), dtype=np.float64)


def _untransform(z: Array, lam: float | None) -> Array:
    if lam is None:
        return z
    # below the transform's floor the inverse is undefined: clip to the floor (a rate of ~0)
    if lam > 0:
        z = np.maximum(z, -1.0 / lam + 1e-12)
    return np.asarray(special.inv_boxcox(z, lam), dtype=np.float64)


def _clean(y: Array, period: int) -> tuple[Array, tuple[int, ...]]:
    """``y`` with its outliers (spikes, outages) replaced, and their indices.

    Seasonal series with at least three cycles only. In the log where ``y`` is positive (a spike
    multiplies the load), each point's deviation from the median of its phase over all cycles,
    less the rolling median of those deviations over one period (the level and trend), is
    compared with :data:`CLEAN_THRESHOLD` robust standard deviations (1.4826 MAD); an outlier
    is replaced by its phase median plus that local level. Without this, a one-off spike stays
    in the seasonal states of a slowly-updated weekly pattern and returns every week."""
    n = len(y)
    if period < 2 or n // period < 3:
        return y, ()
    positive = bool(np.all(y > 0))
    z = np.log(y) if positive else y.copy()
    padded = np.full(-(-n // period) * period, np.nan)
    padded[:n] = z
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a phase may be all-NaN: never here
        phase_median = np.nanmedian(padded.reshape(-1, period), axis=0)
    deviation = z - np.resize(phase_median, n)
    level = pd.Series(deviation).rolling(period, center=True, min_periods=1).median().to_numpy()
    residual = deviation - level
    spread = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    if spread == 0:
        return y, ()
    flagged = np.abs(residual) > CLEAN_THRESHOLD * spread
    flagged[n - CLEAN_KEEP_RECENT :] = False
    if not flagged.any():
        return y, ()
    z = np.where(flagged, z - residual, z)
    cleaned = np.exp(z) if positive else z
    return np.asarray(cleaned, dtype=np.float64), tuple(int(i) for i in np.flatnonzero(flagged))


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
        _check_horizon(horizon)
        if not 0 < level < 1:
            raise InvalidInput("level must be between 0 and 1")
        n = len(self.series)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            frame = self._results.get_prediction(start=n, end=n + horizon - 1).summary_frame(
                alpha=1 - level
            )
        mean = _untransform(np.asarray(frame["mean"], dtype=np.float64), self.boxcox_lambda)
        lower = _untransform(np.asarray(frame["pi_lower"], dtype=np.float64), self.boxcox_lambda)
        upper = _untransform(np.asarray(frame["pi_upper"], dtype=np.float64), self.boxcox_lambda)
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
            period = _check_period(data["period"])
            damped = bool(data["damped"])
            lam = data["boxcox_lambda"]
            lam = None if lam is None else _check_lambda(float(lam))
            series = _as_series(data["series"])
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
            model = _model(_transform(series, lam), kind, period, damped, initial)
            params = {name: float(data["params"][name]) for name in model.param_names}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"not a forecaster's parameters: {exc}") from exc
        if not all(0 <= v <= 1 for v in params.values()):  # NaN fails too
            raise InvalidInput("the smoothing and damping parameters must be within [0, 1]")
        results = model.smooth([params[name] for name in model.param_names])
        return cls(
            kind, period, damped, lam, params, initial, tuple(map(float, series)), cleaned, results
        )


@overload
def fit(
    series: Sequence[float] | Array,
    period: int,
    *,
    periods: None = None,
    damped: bool = True,
    boxcox: bool | float = False,
    max_alpha: float | None = None,
    clean: bool = False,
    horizon: int | None = None,
) -> FittedForecaster: ...


@overload
def fit(
    series: Sequence[float] | Array,
    period: int,
    *,
    periods: Sequence[int],
    damped: bool = True,
    boxcox: bool | float = False,
    max_alpha: float | None = None,
    clean: bool = False,
    horizon: int | None = None,
) -> Forecaster: ...


def fit(
    series: Sequence[float] | Array,
    period: int,
    *,
    periods: Sequence[int] | None = None,
    damped: bool = True,
    boxcox: bool | float = False,
    max_alpha: float | None = None,
    clean: bool = False,
    horizon: int | None = None,
) -> Forecaster:
    """Fit the richest model ``series`` supports (see the module's docstring).

    ``period`` is the seasonal period in buckets (24 for daily seasonality of hourly buckets;
    1 for none). ``boxcox``: False (none), True (lambda estimated by maximum likelihood, kept in
    [0, 1]) or a lambda; it needs a positive series. ``max_alpha`` caps the level's smoothing
    parameter (a slower level: steadier forecasts many steps ahead). ``clean`` replaces the
    outliers of a seasonal series before the fit (:func:`_clean`; their indices are kept in
    ``cleaned``, and the stored series is the cleaned one). ``horizon``: the smoothing parameters
    are then re-estimated for forecasts 1 to ``horizon`` steps ahead (:func:`_multistep`)
    rather than by the likelihood, which weighs the next step only.

    ``periods`` (seasonal periods in buckets, e.g. ``(24, 168)``): an MSTL decomposition over
    those of them the history holds more than two cycles of, its seasonally adjusted series
    fitted with the same options (damped Holt, ``max_alpha``, ``horizon``; Box-Cox and cleaning,
    on the longest period, apply to the series before the decomposition); when it holds none,
    the ETS model on ``period`` as without ``periods``."""
    if max_alpha is not None and not 0 < max_alpha <= 1:
        raise InvalidInput("max_alpha must be in (0, 1]")
    y = _as_series(series)
    _check_period(period)
    if horizon is not None:
        _check_horizon(horizon)
    if periods is not None:
        usable = usable_periods(len(y), periods)
        if usable:
            return _fit_mstl(
                y,
                usable,
                damped=damped,
                boxcox=boxcox,
                max_alpha=max_alpha,
                clean=clean,
                horizon=horizon,
            )
    kind = _kind_for(len(y), period)
    cleaned: tuple[int, ...] = ()
    if clean and kind == "seasonal":
        y, cleaned = _clean(y, period)
    lam: float | None = None
    if boxcox is not False:
        if np.any(y <= 0):
            raise InvalidInput("a Box-Cox transform needs a positive series")
        lam = _boxcox_lambda(y) if boxcox is True else _check_lambda(float(boxcox))
    z = _transform(y, lam)
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
        smoothing = _multistep(model, z, smoothing, _check_horizon(horizon))
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


def _check_periods(periods: Sequence[int]) -> tuple[int, ...]:
    try:
        checked = tuple(_check_period(p) for p in periods)
    except TypeError as exc:
        raise InvalidInput("periods must be a sequence of integers") from exc
    if not 1 <= len(checked) <= MAX_PERIODS or len(set(checked)) != len(checked):
        raise InvalidInput(f"periods must be 1 to {MAX_PERIODS} distinct integers")
    if any(p < 2 for p in checked):
        raise InvalidInput("a seasonal period is at least 2 buckets")
    return tuple(sorted(checked))


def usable_periods(n: int, periods: Sequence[int]) -> tuple[int, ...]:
    """The periods of which ``n`` points hold more than two cycles (MSTL drops the others)."""
    return tuple(p for p in _check_periods(periods) if n > 2 * p)


@dataclass(frozen=True, slots=True)
class MultiSeasonalForecaster:
    """An MSTL decomposition: one seasonal component per period, each forecast by its last
    cycle, plus the seasonally adjusted series forecast by its own ETS model (``adjusted``, on
    the Box-Cox scale when ``boxcox_lambda`` is set)."""

    periods: tuple[int, ...]
    boxcox_lambda: float | None
    cycles: tuple[tuple[float, ...], ...]
    adjusted: FittedForecaster
    series: tuple[float, ...]
    cleaned: tuple[int, ...]

    kind: Literal["multiseasonal"] = "multiseasonal"

    @property
    def period(self) -> int:
        """The longest period."""
        return self.periods[-1]

    def _seasonal(self, horizon: int) -> Array:
        steps = np.arange(horizon)
        total = np.zeros(horizon)
        for period, cycle in zip(self.periods, self.cycles, strict=True):
            total += np.asarray(cycle, dtype=np.float64)[steps % period]
        return total

    def forecast(self, horizon: int, *, level: float = 0.95) -> Forecast:
        """The next ``horizon`` buckets: the adjusted series' forecast and interval (ETS's
        variances; the seasonal components' own uncertainty is not counted) plus the seasonal
        components' last cycles, mapped back through the Box-Cox transform."""
        inner = self.adjusted.forecast(horizon, level=level)
        seasonal = self._seasonal(horizon)

        def back(values: tuple[float, ...]) -> tuple[float, ...]:
            z = np.asarray(values, dtype=np.float64) + seasonal
            return tuple(map(float, _untransform(z, self.boxcox_lambda)))

        return Forecast(back(inner.mean), back(inner.lower), back(inner.upper), level)

    def to_params(self) -> dict[str, Any]:
        """Everything :meth:`from_params` needs, as JSON-serialisable values."""
        return {
            "format": MSTL_FORMAT,
            "periods": list(self.periods),
            "boxcox_lambda": self.boxcox_lambda,
            "cycles": [list(c) for c in self.cycles],
            "adjusted": self.adjusted.to_params(),
            "series": list(self.series),
            "cleaned": list(self.cleaned),
        }

    @classmethod
    def from_params(cls, data: Mapping[str, Any]) -> MultiSeasonalForecaster:
        """Rebuild from :meth:`to_params` (checked: a bad document is InvalidInput)."""
        try:
            if data["format"] != MSTL_FORMAT:
                raise InvalidInput(f"unknown forecaster format {data['format']!r}")
            series = _as_series(data["series"])
            periods = _check_periods(data["periods"])
            if usable_periods(len(series), periods) != periods:
                raise InvalidInput(f"periods {periods} need more than two cycles of history")
            lam = data["boxcox_lambda"]
            lam = None if lam is None else _check_lambda(float(lam))
            if lam is not None and np.any(series <= 0):
                raise InvalidInput("a Box-Cox transform needs a positive series")
            cycles = tuple(
                tuple(map(float, _as_series(c, what="seasonal cycle"))) for c in data["cycles"]
            )
            if [len(c) for c in cycles] != list(periods):
                raise InvalidInput("the seasonal cycles must be one a period, a period long")
            cleaned = tuple(int(i) for i in data.get("cleaned", ()))
            if not all(0 <= i < len(series) for i in cleaned):
                raise InvalidInput("the cleaned indices must be positions in the series")
            adjusted = FittedForecaster.from_params(data["adjusted"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"not a forecaster's parameters: {exc}") from exc
        if len(adjusted.series) != len(series) or adjusted.boxcox_lambda is not None:
            raise InvalidInput("the adjusted series must be the series' own, untransformed")
        return cls(periods, lam, cycles, adjusted, tuple(map(float, series)), cleaned)


Forecaster = FittedForecaster | MultiSeasonalForecaster


def forecaster_from_params(data: Mapping[str, Any]) -> Forecaster:
    """Rebuild either kind of forecaster from its ``to_params()`` document."""
    if not isinstance(data, Mapping):
        raise InvalidInput("a forecaster's parameters are a JSON object")
    if data.get("format") == MSTL_FORMAT:
        return MultiSeasonalForecaster.from_params(data)
    return FittedForecaster.from_params(data)


def _fit_mstl(
    y: Array,
    periods: tuple[int, ...],
    *,
    damped: bool,
    boxcox: bool | float,
    max_alpha: float | None,
    clean: bool,
    horizon: int | None,
) -> MultiSeasonalForecaster:
    cleaned: tuple[int, ...] = ()
    if clean:
        y, cleaned = _clean(y, periods[-1])
    lam: float | None = None
    if boxcox is not False:
        if np.any(y <= 0):
            raise InvalidInput("a Box-Cox transform needs a positive series")
        lam = _boxcox_lambda(y) if boxcox is True else _check_lambda(float(boxcox))
    z = _transform(y, lam)
    decomposition = MSTL(
        z,
        periods=periods,
        windows=[MSTL_SEASONAL_WINDOW] * len(periods),
        stl_kwargs={"seasonal_deg": 0},
    ).fit()
    seasonal = np.asarray(decomposition.seasonal, dtype=np.float64).reshape(len(z), -1).T
    cycles = tuple(
        tuple(map(float, component[len(z) - p :]))
        for p, component in zip(periods, seasonal, strict=True)
    )
    adjusted = fit(z - seasonal.sum(axis=0), 1, damped=damped, max_alpha=max_alpha, horizon=horizon)
    return MultiSeasonalForecaster(
        periods, lam, cycles, adjusted, tuple(float(v) for v in y), cleaned
    )


def seasonal_naive(series: Sequence[float] | Array, period: int, horizon: int) -> Array:
    """The seasonal-naive forecast: each future bucket repeats the last observed one ``period``
    buckets (a whole number of cycles) before it; with ``period`` 1, the naive forecast."""
    y = _as_series(series)
    _check_period(period)
    _check_horizon(horizon)
    if len(y) < period:
        raise InvalidInput(f"a seasonal-naive forecast needs a full period ({period} points)")
    last_cycle = y[len(y) - period :]
    return np.asarray([last_cycle[h % period] for h in range(horizon)], dtype=np.float64)


def mase_scale(series: Sequence[float] | Array, period: int) -> float:
    """The in-sample MAE of the one-step seasonal-naive forecast: MASE's denominator."""
    y = _as_series(series)
    _check_period(period)
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
    y = _as_series(series)
    _check_period(period)
    _check_horizon(horizon)
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

"""Load forecasts: :func:`fit` chooses the forecaster, and :func:`fit_load` is the product's
default setting.

:func:`fit` fits statsmodels' ETS on one seasonal ``period`` (:mod:`tenantry.ai.ets`: the
richest model the history supports), or, with ``periods``, an MSTL decomposition over those of
them the history holds more than two cycles of, its seasonally adjusted series forecast by ETS
(:mod:`tenantry.ai.mstl`), falling back to the ETS rule on ``period`` when it holds none. Both
are kept as JSON, never pickled; :func:`forecaster_from_params` rebuilds either from its
``to_params()`` document. The input's bounds, the Box-Cox transform and outlier cleaning are
:mod:`tenantry.ai.series`'s; scoring against seasonal-naive is :mod:`tenantry.ai.backtest`'s.

The default (:func:`fit_load`, used by the ``load_forecasting`` model type and the performance
manager's forecasts) was chosen on the shipped load traces as they were before issue 16's
longer ones: MSTL over a day and a week of buckets, the adjusted series' parameters estimated
for the horizon, a Box-Cox transform when every value is positive, outliers cleaned. One change
was then made on the longer development traces (:data:`~tenantry.ai.traces.TRACES`): the
lambda by Guerrero's method (:data:`LOAD_BOXCOX`) instead of the likelihood; the test traces
(:data:`~tenantry.ai.traces.TEST_TRACES`) measured it once, after.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, overload

import numpy as np

from tenantry.ai.ets import FittedForecaster, fit_ets
from tenantry.ai.mstl import MSTL_FORMAT, MultiSeasonalForecaster, fit_mstl, usable_periods
from tenantry.ai.series import (
    MAX_PERIOD,
    Array,
    BoxCox,
    as_series,
    check_horizon,
    check_period,
)
from tenantry.errors import InvalidInput

__all__ = [
    "LOAD_BOXCOX",
    "Forecaster",
    "default_periods",
    "fit",
    "fit_load",
    "forecaster_from_params",
]

Forecaster = FittedForecaster | MultiSeasonalForecaster
#: The default setting's Box-Cox estimate on a positive series (issue 16's second round):
#: Guerrero's method, which asks for a spread that does not grow with the level, rather than
#: the likelihood of the pooled values, which the seasonal shape sways.
LOAD_BOXCOX: BoxCox = "guerrero"


@overload
def fit(
    series: Sequence[float] | Array,
    period: int,
    *,
    periods: None = None,
    damped: bool = True,
    boxcox: BoxCox = False,
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
    boxcox: BoxCox = False,
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
    boxcox: BoxCox = False,
    max_alpha: float | None = None,
    clean: bool = False,
    horizon: int | None = None,
) -> Forecaster:
    """Fit the richest model ``series`` supports (see the module's docstring).

    ``period`` is the seasonal period in buckets (24 for daily seasonality of hourly buckets;
    1 for none). ``boxcox``: False (none), True (lambda estimated by maximum likelihood),
    ``"guerrero"`` (lambda by Guerrero's method over cycles of the longest period:
    :func:`~tenantry.ai.series.guerrero_lambda`), either kept in [0, 1], or a lambda; it needs
    a positive series. ``max_alpha`` caps the level's smoothing
    parameter (a slower level: steadier forecasts many steps ahead). ``clean`` replaces the
    outliers of a seasonal series before the fit (:func:`~tenantry.ai.series.clean_outliers`;
    their indices are kept in ``cleaned``, and the stored series is the cleaned one).
    ``horizon``: the smoothing parameters are then re-estimated for forecasts 1 to ``horizon``
    steps ahead (:mod:`tenantry.ai.ets`) rather than by the likelihood, which weighs the next
    step only.

    ``periods`` (seasonal periods in buckets, e.g. ``(24, 168)``): an MSTL decomposition over
    those of them the history holds more than two cycles of, its seasonally adjusted series
    fitted with the same options (damped Holt, ``max_alpha``, ``horizon``; Box-Cox and cleaning,
    on the longest period, apply to the series before the decomposition); when it holds none,
    the ETS model on ``period`` as without ``periods``."""
    if max_alpha is not None and not 0 < max_alpha <= 1:
        raise InvalidInput("max_alpha must be in (0, 1]")
    y = as_series(series)
    check_period(period)
    if horizon is not None:
        check_horizon(horizon)
    if periods is not None:
        usable = usable_periods(len(y), periods)
        if usable:
            return fit_mstl(
                y,
                usable,
                damped=damped,
                boxcox=boxcox,
                max_alpha=max_alpha,
                clean=clean,
                horizon=horizon,
            )
    return fit_ets(
        y, period, damped=damped, boxcox=boxcox, max_alpha=max_alpha, clean=clean, horizon=horizon
    )


def default_periods(day: int) -> tuple[int, ...] | None:
    """The default setting's seasonal periods for ``day`` buckets a day: a day and a week
    (``(24, 168)`` for hourly buckets), the day alone when a week is longer than
    :data:`~tenantry.ai.series.MAX_PERIOD`, none without a daily period (``day`` 1)."""
    check_period(day)
    if day < 2:
        return None
    return (day, 7 * day) if 7 * day <= MAX_PERIOD else (day,)


def fit_load(series: Sequence[float] | Array, day: int, horizon: int) -> Forecaster:
    """The product's default load forecaster for forecasts ``horizon`` buckets ahead of a
    series of ``day`` buckets a day: MSTL over :func:`default_periods` (those of them the history
    holds more than two cycles of; else ETS on ``day``), the parameters estimated for the
    horizon, a Box-Cox transform when every value is positive (a load series may hold hours of
    no load: then none) with its lambda by Guerrero's method (:data:`LOAD_BOXCOX`), outliers
    cleaned."""
    y = as_series(series)
    return fit(
        y,
        day,
        periods=default_periods(day),
        boxcox=LOAD_BOXCOX if np.all(y > 0) else False,
        clean=True,
        horizon=horizon,
    )


def forecaster_from_params(data: Mapping[str, Any]) -> Forecaster:
    """Rebuild either kind of forecaster from its ``to_params()`` document."""
    if not isinstance(data, Mapping):
        raise InvalidInput("a forecaster's parameters are a JSON object")
    if data.get("format") == MSTL_FORMAT:
        return MultiSeasonalForecaster.from_params(data)
    return FittedForecaster.from_params(data)

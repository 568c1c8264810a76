"""The multi-seasonal load forecaster: statsmodels' MSTL (multiple seasonal-trend decomposition
by LOESS) with the seasonally adjusted series forecast by ETS.

With ``periods`` (say ``(24, 168)``: a daily and a weekly pattern of hourly buckets),
:func:`tenantry.ai.fit` decomposes the series with MSTL over the periods whose history holds
more than two cycles (:func:`usable_periods`; MSTL drops the others). Each seasonal component is
smoothed across cycles with a local mean over nearly the whole history (an average of several
weeks, not the last one alone); the forecast repeats each component's last cycle and adds the
forecast of the seasonally adjusted series (trend and remainder) by damped Holt
(:func:`tenantry.ai.ets.fit_ets`), as statsmodels' ``STLForecast`` does with one period. It is
kept as JSON, never pickled: the components' last cycles and the adjusted series' ETS document
(:class:`MultiSeasonalForecaster`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from statsmodels.tsa.seasonal import MSTL

from tenantry.ai.ets import FittedForecaster, Forecast, fit_ets
from tenantry.ai.series import (
    Array,
    BoxCox,
    as_series,
    check_lambda,
    check_period,
    clean_outliers,
    lambda_for,
    transform,
    untransform,
)
from tenantry.errors import InvalidInput

__all__ = [
    "MAX_PERIODS",
    "MSTL_FORMAT",
    "MSTL_SEASONAL_WINDOW",
    "MultiSeasonalForecaster",
    "check_periods",
    "fit_mstl",
    "usable_periods",
]

MSTL_FORMAT = "tenantry.forecast-mstl/1"
#: MSTL's seasonal smoother: a LOESS window of this many cycles (odd), of degree 0 (a local
#: mean): on histories of a few dozen cycles nearly every cycle weighs in, so a component is an
#: average pattern rather than the last cycle's, and its end is not extrapolated by a slope.
MSTL_SEASONAL_WINDOW = 101
MAX_PERIODS = 4


def check_periods(periods: Sequence[int]) -> tuple[int, ...]:
    try:
        checked = tuple(check_period(p) for p in periods)
    except TypeError as exc:
        raise InvalidInput("periods must be a sequence of integers") from exc
    if not 1 <= len(checked) <= MAX_PERIODS or len(set(checked)) != len(checked):
        raise InvalidInput(f"periods must be 1 to {MAX_PERIODS} distinct integers")
    if any(p < 2 for p in checked):
        raise InvalidInput("a seasonal period is at least 2 buckets")
    return tuple(sorted(checked))


def usable_periods(n: int, periods: Sequence[int]) -> tuple[int, ...]:
    """The periods of which ``n`` points hold more than two cycles (MSTL drops the others)."""
    return tuple(p for p in check_periods(periods) if n > 2 * p)


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
            return tuple(map(float, untransform(z, self.boxcox_lambda)))

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
            series = as_series(data["series"])
            periods = check_periods(data["periods"])
            if usable_periods(len(series), periods) != periods:
                raise InvalidInput(f"periods {periods} need more than two cycles of history")
            lam = data["boxcox_lambda"]
            lam = None if lam is None else check_lambda(float(lam))
            if lam is not None and np.any(series <= 0):
                raise InvalidInput("a Box-Cox transform needs a positive series")
            cycles = tuple(
                tuple(map(float, as_series(c, what="seasonal cycle"))) for c in data["cycles"]
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


def fit_mstl(
    y: Array,
    periods: tuple[int, ...],
    *,
    damped: bool,
    boxcox: BoxCox,
    max_alpha: float | None,
    clean: bool,
    horizon: int | None,
) -> MultiSeasonalForecaster:
    """The MSTL forecaster of ``y`` over ``periods`` (already checked by :func:`tenantry.ai.fit`
    and reduced to :func:`usable_periods`; see the module's docstring)."""
    cleaned: tuple[int, ...] = ()
    if clean:
        y, cleaned = clean_outliers(y, periods[-1])
    lam = lambda_for(y, boxcox, periods[-1])
    z = transform(y, lam)
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
    adjusted = fit_ets(
        z - seasonal.sum(axis=0), 1, damped=damped, max_alpha=max_alpha, horizon=horizon
    )
    return MultiSeasonalForecaster(
        periods, lam, cycles, adjusted, tuple(float(v) for v in y), cleaned
    )

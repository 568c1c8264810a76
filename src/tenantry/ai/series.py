"""A load series before a forecaster fits it: the bounds every forecaster checks (length,
period, horizon), the Box-Cox transform and its inverse, and outlier cleaning.

The Box-Cox transform (for positive series: a log-like one makes the daily swing scale with the
level, as load does) is applied before a fit and undone on the forecast. Cleaning replaces a
seasonal series' outliers (spikes, outages) so that a one-off spike does not return every cycle.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize, special, stats

from tenantry.errors import InvalidInput

__all__ = [
    "BOXCOX_RANGE",
    "CLEAN_KEEP_RECENT",
    "CLEAN_THRESHOLD",
    "MAX_HORIZON",
    "MAX_PERIOD",
    "MAX_SERIES_LENGTH",
    "Array",
    "as_series",
    "boxcox_lambda",
    "check_horizon",
    "check_lambda",
    "check_period",
    "clean_outliers",
    "guerrero_lambda",
    "lambda_for",
    "transform",
    "untransform",
]

MAX_SERIES_LENGTH = 20_000
MAX_HORIZON = 2_000
MAX_PERIOD = 2_016  # a week of 5-minute buckets
#: A point is an outlier when its deviation is more than this many robust standard deviations.
CLEAN_THRESHOLD = 5.0
#: The newest buckets are never cleaned: a surge still under way is load to plan for.
CLEAN_KEEP_RECENT = 3
#: Box-Cox lambdas are estimated, then kept in this range (0: the log; 1: no transform).
BOXCOX_RANGE = (0.0, 1.0)

Array = npt.NDArray[np.float64]
#: A fit's Box-Cox option: False (none), True (lambda by maximum likelihood), ``"guerrero"``
#: (lambda by Guerrero's method over the seasonal cycles) or a lambda.
BoxCox = bool | float | Literal["guerrero"]


def as_series(values: Sequence[float] | Array, *, what: str = "series") -> Array:
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


def check_period(period: int) -> int:
    if isinstance(period, bool) or not isinstance(period, int) or not 1 <= period <= MAX_PERIOD:
        raise InvalidInput(f"period must be an integer from 1 to {MAX_PERIOD}")
    return period


def check_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= MAX_HORIZON:
        raise InvalidInput(f"horizon must be an integer from 1 to {MAX_HORIZON}")
    return horizon


def boxcox_lambda(y: Array) -> float:
    """The maximum-likelihood Box-Cox lambda of ``y``, kept in :data:`BOXCOX_RANGE`."""
    low, high = BOXCOX_RANGE
    if np.ptp(y) == 0:
        return 1.0
    return float(np.clip(stats.boxcox_normmax(y, brack=(low, high), method="mle"), low, high))


def guerrero_lambda(y: Array, period: int) -> float:
    """The Box-Cox lambda of ``y`` by Guerrero's method (1993), kept in :data:`BOXCOX_RANGE`:
    the lambda that makes the ratio of each cycle's standard deviation to its mean to the power
    ``1 - lambda`` most nearly constant (the smallest coefficient of variation over the whole
    cycles of ``period`` buckets, the newest ones; ``period`` 1 counts pairs, as R's
    ``forecast::BoxCox.lambda`` does). Unlike the likelihood of the pooled values, which a
    seasonal shape sways, it asks what a forecast needs: a spread that does not grow with the
    level. Fewer than two whole cycles, or a constant cycle: the maximum-likelihood lambda
    (:func:`boxcox_lambda`)."""
    size = max(period, 2)
    cycles = len(y) // size
    if cycles < 2:
        return boxcox_lambda(y)
    blocks = y[len(y) - cycles * size :].reshape(cycles, size)
    means, spreads = blocks.mean(axis=1), blocks.std(axis=1, ddof=1)
    if np.any(spreads == 0) or np.any(means <= 0):
        return boxcox_lambda(y)
    low, high = BOXCOX_RANGE

    def variation(lam: float) -> float:
        ratio = spreads / means ** (1.0 - lam)
        return float(np.std(ratio, ddof=1) / np.mean(ratio))

    best = optimize.minimize_scalar(variation, bounds=(low, high), method="bounded")
    return float(np.clip(best.x, low, high))


def lambda_for(y: Array, boxcox: BoxCox, period: int) -> float | None:
    """The Box-Cox lambda the option ``boxcox`` asks of ``y`` (None: no transform); a transform
    needs a positive series. ``period``: the cycle Guerrero's method measures spread over."""
    if boxcox is False:
        return None
    if np.any(y <= 0):
        raise InvalidInput("a Box-Cox transform needs a positive series")
    if boxcox is True:
        return boxcox_lambda(y)
    if boxcox == "guerrero":
        return guerrero_lambda(y, period)
    if isinstance(boxcox, str):
        raise InvalidInput("boxcox must be False, True, 'guerrero' or a lambda")
    return check_lambda(float(boxcox))


def check_lambda(lam: float) -> float:
    if not -1 <= lam <= 2:  # NaN fails too
        raise InvalidInput("a Box-Cox lambda must be within [-1, 2]")
    return lam


def transform(y: Array, lam: float | None) -> Array:
    return y if lam is None else np.asarray(special.boxcox(y, lam), dtype=np.float64)


def untransform(z: Array, lam: float | None) -> Array:
    if lam is None:
        return z
    # below the transform's floor the inverse is undefined: clip to the floor (a rate of ~0)
    if lam > 0:
        z = np.maximum(z, -1.0 / lam + 1e-12)
    return np.asarray(special.inv_boxcox(z, lam), dtype=np.float64)


def clean_outliers(y: Array, period: int) -> tuple[Array, tuple[int, ...]]:
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

"""The multi-seasonal forecaster (MSTL, ``fit(..., periods=...)``): it beats seasonal-naive on a
series with a daily and a weekly pattern, falls back when the history is short, and round-trips
through JSON; bad documents and arguments are InvalidInput."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tenantry.ai.backtest import backtest, seasonal_naive
from tenantry.ai.ets import FittedForecaster
from tenantry.ai.forecast import default_periods, fit, fit_load, forecaster_from_params
from tenantry.ai.mstl import MultiSeasonalForecaster, usable_periods
from tenantry.ai.series import MAX_PERIOD, clean_outliers, guerrero_lambda
from tenantry.errors import InvalidInput

DAY, WEEK = 24, 168


def double_seasonal(n: int, seed: int = 5) -> np.ndarray:
    """Hourly load: a level of 100, a daily sine of amplitude 20, weekends 30 lower, noise sd 3."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    weekend = (t // DAY) % 7 >= 5
    return 100 + 20 * np.sin(2 * np.pi * t / DAY) - 30 * weekend + rng.normal(0, 3, n)


def test_it_beats_seasonal_naive_by_averaging_the_weekly_pattern() -> None:
    y = double_seasonal(WEEK * 5 + DAY * 3)
    result = backtest(y, WEEK, DAY, 3, fitter=lambda h: fit(h, WEEK, periods=(DAY, WEEK)))
    # seasonal-naive repeats one noisy week (errors sqrt(2) times the noise's); the model's
    # weekly pattern is an average of five, so its errors are about sqrt(1 + 1/5 + a little for
    # the level) times the noise's: at best some 20-25 % lower, less on three origins
    assert result.improvement > 0.15
    ets = backtest(y, WEEK, DAY, 3, fitter=lambda h: fit(h, DAY))
    assert result.mase < 0.9 * ets.mase  # ETS on the daily period misses the weekend
    model = fit(y, WEEK, periods=(WEEK, DAY))
    assert isinstance(model, MultiSeasonalForecaster)
    assert model.kind == "multiseasonal"
    assert model.periods == (DAY, WEEK)  # sorted
    assert model.period == WEEK


def test_the_weekend_is_forecast_from_the_weekly_component() -> None:
    y = double_seasonal(WEEK * 5)  # ends on a Sunday night: the next day is a Monday
    weekday = np.asarray(fit(y, WEEK, periods=(DAY, WEEK)).forecast(DAY).mean)
    friday_end = WEEK * 4 + DAY * 5  # the history ends on Friday night: a Saturday follows
    saturday = np.asarray(fit(y[:friday_end], WEEK, periods=(DAY, WEEK)).forecast(DAY).mean)
    assert np.mean(weekday) - np.mean(saturday) == pytest.approx(30, abs=5)


def test_the_forecast_and_its_interval() -> None:
    y = double_seasonal(WEEK * 4)
    forecast = fit(y, WEEK, periods=(DAY, WEEK), boxcox=True).forecast(48, level=0.9)
    assert forecast.level == 0.9
    assert len(forecast.mean) == 48
    bounds = zip(forecast.lower, forecast.mean, forecast.upper, strict=True)
    assert all(lo < m < hi for lo, m, hi in bounds)
    assert all(v > 0 for v in forecast.lower)  # mapped back from the log-like scale


def test_a_short_history_drops_the_periods_it_cannot_hold_twice() -> None:
    y = double_seasonal(WEEK * 2)  # exactly two weeks: MSTL needs more than two cycles
    model = fit(y, DAY, periods=(DAY, WEEK))
    assert isinstance(model, MultiSeasonalForecaster)
    assert model.periods == (DAY,)
    assert usable_periods(2 * WEEK + 1, (DAY, WEEK)) == (DAY, WEEK)


def test_without_two_cycles_of_any_period_it_is_the_ets_model() -> None:
    y = double_seasonal(40)
    model = fit(y, DAY, periods=(DAY, WEEK))
    assert isinstance(model, FittedForecaster)
    assert model.kind == "trend"  # 40 points are fewer than Holt-Winters needs on 24 too
    assert model.forecast(5) == fit(y, DAY).forecast(5)


def test_the_model_round_trips_through_json_and_forecasts_the_same() -> None:
    y = double_seasonal(WEEK * 4)
    y[300:303] *= 4  # a spike, replaced before the fit
    model = fit(y, WEEK, periods=(DAY, WEEK), boxcox=True, clean=True, horizon=DAY)
    assert isinstance(model, MultiSeasonalForecaster)
    assert {300, 301} <= set(model.cleaned)
    document = json.loads(json.dumps(model.to_params()))
    rebuilt = forecaster_from_params(document)
    assert isinstance(rebuilt, MultiSeasonalForecaster)
    assert rebuilt.forecast(DAY * 2) == model.forecast(DAY * 2)
    assert rebuilt.to_params() == document
    # the ETS model's documents go through the same door
    ets = fit(y, DAY)
    assert forecaster_from_params(ets.to_params()).forecast(3) == ets.forecast(3)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(format="tenantry.forecast-mstl/0"),
        lambda d: d.update(periods=[24]),
        lambda d: d.update(periods=[24, 24 * 200]),
        lambda d: d["cycles"][0].pop(),
        lambda d: d["cycles"][1].__setitem__(0, "x"),
        lambda d: d.update(cycles=[d["cycles"][0]]),
        lambda d: d.update(boxcox_lambda=float("nan")),
        lambda d: d.update(cleaned=[10**6]),
        lambda d: d["adjusted"]["series"].pop(),
        lambda d: d["adjusted"].update(boxcox_lambda=0.5),
        lambda d: d["adjusted"]["params"].update(smoothing_level=2.0),
        lambda d: d.pop("series"),
    ],
)
def test_a_bad_document_is_invalid_input(change: object) -> None:
    document = fit(double_seasonal(WEEK * 3), WEEK, periods=(DAY, WEEK)).to_params()
    assert callable(change)
    change(document)
    with pytest.raises(InvalidInput):
        forecaster_from_params(document)


@pytest.mark.parametrize(
    "periods", [(), (0,), (1, 24), (24, 24), (True,), (MAX_PERIOD + 1,), (2, 3, 4, 5, 6), ("24",)]
)
def test_bad_periods_are_invalid_input(periods: tuple[object, ...]) -> None:
    with pytest.raises(InvalidInput):
        fit(double_seasonal(WEEK * 3), WEEK, periods=periods)  # type: ignore[arg-type]


def test_seasonal_naive_is_the_peer_on_the_same_origins() -> None:
    """The backtest's baseline does not depend on the model: same figure with or without MSTL."""
    y = double_seasonal(WEEK * 4)
    with_mstl = backtest(y, WEEK, DAY, 2, fitter=lambda h: fit(h, WEEK, periods=(DAY, WEEK)))
    without = backtest(y, WEEK, DAY, 2)
    assert with_mstl.baseline_mase == without.baseline_mase
    assert np.array_equal(seasonal_naive(y, WEEK, 3), y[-WEEK : -WEEK + 3])


def test_the_default_setting_is_mstl_on_a_day_and_a_week_for_the_horizon() -> None:
    assert default_periods(DAY) == (DAY, WEEK)
    assert default_periods(288) == (288, 2016)  # 5-minute buckets: a week is MAX_PERIOD
    assert default_periods(300) == (300,)  # a week would be longer than MAX_PERIOD
    assert default_periods(1) is None
    y = double_seasonal(WEEK * 4)
    model = fit_load(y, DAY, DAY)
    same = fit(y, DAY, periods=(DAY, WEEK), boxcox="guerrero", clean=True, horizon=DAY)
    assert isinstance(model, MultiSeasonalForecaster)
    assert model.to_params() == same.to_params()  # the same fit, parameters and all
    assert model.boxcox_lambda is not None  # a positive series: Box-Cox, lambda by Guerrero
    assert model.boxcox_lambda == guerrero_lambda(clean_outliers(y, WEEK)[0], WEEK)
    # through JSON and back, the same forecast
    document = json.loads(json.dumps(model.to_params()))
    assert forecaster_from_params(document).forecast(DAY) == model.forecast(DAY)
    # an hour without load: no Box-Cox (the default does not refuse the series)
    idle = y.copy()
    idle[100] = 0.0
    assert fit_load(idle, DAY, DAY).boxcox_lambda is None
    assert fit_load(y[: DAY * 9], DAY, DAY).periods == (DAY,)  # nine days: the day alone
    short = fit_load(y[:30], DAY, DAY)  # not two days: ETS's fallback, no seasonality
    assert isinstance(short, FittedForecaster)
    assert short.kind == "trend"


def test_guerrero_picks_the_log_for_a_spread_that_grows_with_the_level() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(WEEK * 8)
    level = 50 * np.exp(t / len(t))  # the level nearly triples over eight weeks
    multiplicative = level * (1 + 0.5 * np.sin(2 * np.pi * t / DAY)) * rng.lognormal(0, 0.1, len(t))
    additive = 100 + 30 * np.sin(2 * np.pi * t / DAY) + t / 20 + rng.normal(0, 3, len(t))
    assert guerrero_lambda(multiplicative, WEEK) < 0.15  # the spread scales with the level
    assert guerrero_lambda(additive, WEEK) > 0.85  # the spread does not
    # fewer than two whole cycles: the likelihood's lambda
    assert 0 <= guerrero_lambda(multiplicative[: WEEK + 5], WEEK) <= 1
    with pytest.raises(InvalidInput, match="positive"):
        fit(np.r_[multiplicative[:-1], 0.0], DAY, boxcox="guerrero")
    with pytest.raises(InvalidInput, match="boxcox"):
        fit(multiplicative, DAY, boxcox="likelihood")  # type: ignore[arg-type]

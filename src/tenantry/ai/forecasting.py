"""The ``load_forecasting`` model type: the load forecaster (:mod:`tenantry.ai.forecast`) in the
registry.

- **Training data.** ``features`` is the load series, one row of one number per bucket, oldest
  first (at most the forecaster's :data:`~tenantry.ai.series.MAX_SERIES_LENGTH`).
  Parameters: ``period`` (a day of buckets, 24 by default; 1 for no seasonality), ``horizon``
  (the buckets held out and forecast when measuring, ``period`` by default), and the
  forecaster's options, whose defaults are the product's default setting
  (:func:`~tenantry.ai.forecast.fit_load`): ``mstl`` (1: MSTL over a day and a week, ``period``
  and ``7 * period`` buckets, those the history holds more than two cycles of; 0: ETS on
  ``period``), ``multistep`` (1: parameters estimated for forecasts 1 to ``horizon`` ahead),
  ``boxcox`` (1 by default when every value is positive, else 0; the lambda by Guerrero's
  method, as :func:`~tenantry.ai.forecast.fit_load`'s; 1 on a series with a zero is refused)
  and ``clean`` (1: outliers replaced), each 0 or 1.
- **Accuracy.** The forecaster is fitted on the series without its last ``horizon`` buckets
  and forecasts them: accuracy is ``1 - MAPE`` on them (clipped at 0). The metrics add the
  held-out MAE, the MAE of seasonal-naive on the same buckets (the baseline it must beat), and
  their ratio. The stored version is then fitted on the whole series, so it forecasts from its
  end. A champion is measured on the same held-out buckets by fitting its configuration
  (period and options; Box-Cox only if the history is positive) to the same history; a
  champion stored before the options existed was ETS on ``period`` without ``multistep``.
- **Asking it.** Each input row is one number, a step ahead (1 = the bucket after the series'
  last); the answer is the point forecast for that step.
- **Stored** as the forecaster's JSON parameters (format ``forecast-json``; either kind,
  :func:`~tenantry.ai.forecast.forecaster_from_params`), hash-checked before they are read;
  nothing is unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import numpy as np

from tenantry.ai.backtest import seasonal_naive
from tenantry.ai.data import Matrix, TrainingData
from tenantry.ai.files import verify
from tenantry.ai.forecast import (
    LOAD_BOXCOX,
    Forecaster,
    default_periods,
    fit,
    forecaster_from_params,
)
from tenantry.ai.kinds import LoadedModel, Progress, Trained, mape, parameters_of
from tenantry.ai.series import MAX_HORIZON, MAX_PERIOD, Array
from tenantry.errors import InvalidInput

__all__ = ["FORECAST_JSON", "LoadForecasting"]

FORECAST_JSON: Final = "forecast-json"
#: The options of a champion stored before ``mstl`` and ``multistep`` existed: ETS, likelihood.
_FORMER: Final = {"mstl": 0, "multistep": 0, "boxcox": 0, "clean": 0}


def _fit(series: Array, options: Mapping[str, Any], horizon: int) -> Forecaster:
    """``series``'s forecaster with the chosen ``options`` (see the module docstring)."""
    period = int(options["period"])
    return fit(
        series,
        period,
        periods=default_periods(period) if options["mstl"] else None,
        boxcox=LOAD_BOXCOX if options["boxcox"] else False,
        clean=bool(options["clean"]),
        horizon=horizon if options["multistep"] else None,
    )


class LoadForecasting:
    """The load forecaster as a model type (see the module docstring)."""

    PARAMETERS: Final = {
        "period": (int, 1, MAX_PERIOD),
        "horizon": (int, 1, MAX_HORIZON),
        "mstl": (int, 0, 1),
        "multistep": (int, 0, 1),
        "boxcox": (int, 0, 1),
        "clean": (int, 0, 1),
    }

    def _chosen(self, data: TrainingData, parameters: Mapping[str, Any]) -> dict[str, Any]:
        if data.width != 1:
            raise InvalidInput(
                "load_forecasting trains on one series: features is one number a row "
                f"(got {data.width})"
            )
        positive = bool(np.all(data.features[:, 0] > 0))  # Box-Cox needs it
        chosen: dict[str, Any] = {
            "period": 24,
            "mstl": 1,
            "multistep": 1,
            "boxcox": int(positive),
            "clean": 1,
        }
        chosen |= parameters_of(parameters, self.PARAMETERS)
        chosen.setdefault("horizon", chosen["period"])
        if len(data.features) <= 2 * chosen["horizon"]:
            raise InvalidInput(
                f"the series has {len(data.features)} buckets: more than twice the horizon "
                f"({chosen['horizon']}) is needed to hold it out and measure"
            )
        return chosen

    def check(self, data: TrainingData, parameters: Mapping[str, Any]) -> None:
        self._chosen(data, parameters)

    def train(
        self, data: TrainingData, parameters: Mapping[str, Any], *, quantile: float,
        progress: Progress,
    ) -> Trained:  # fmt: skip
        del quantile
        chosen = self._chosen(data, parameters)
        series = data.features[:, 0]
        horizon, period = chosen["horizon"], chosen["period"]
        history, truth = series[:-horizon], series[-horizon:]
        progress(0.1, "fitting on the history")
        held = np.asarray(_fit(history, chosen, horizon).forecast(horizon).mean)
        naive = np.asarray(seasonal_naive(history, period, horizon))
        mae = float(np.mean(np.abs(truth - held)))
        naive_mae = float(np.mean(np.abs(truth - naive)))
        error = mape(truth, held)
        accuracy = 0.0 if error is None else max(0.0, 1.0 - error)
        metrics: dict[str, Any] = {
            "accuracy": accuracy,
            "mape": error,
            "mae": mae,
            "seasonal_naive_mae": naive_mae,
            "mae_over_seasonal_naive": mae / naive_mae if naive_mae else None,
            "train_buckets": len(history),
            "held_out_buckets": horizon,
        }
        progress(0.6, "fitting on the whole series")
        whole = _fit(series, chosen, horizon)
        file = json.dumps(whole.to_params(), separators=(",", ":")).encode()
        holdout = history.reshape(-1, 1)
        return Trained(file, FORECAST_JSON, metrics, chosen, accuracy, holdout, truth)

    def load(self, file: bytes, file_format: str, sha256: bytes) -> Any:
        if file_format != FORECAST_JSON:
            raise InvalidInput(f"a load_forecasting model is stored as {FORECAST_JSON}")
        verify(file, sha256)
        try:
            document = json.loads(file)
        except ValueError:
            raise InvalidInput("the stored forecaster is not JSON") from None
        if not isinstance(document, dict):
            raise InvalidInput("the stored forecaster is not a JSON object")
        return forecaster_from_params(document)

    def predict(self, loaded: LoadedModel, rows: Matrix) -> list[Any]:
        steps = rows[:, 0]
        if not np.all((steps >= 1) & (steps <= MAX_HORIZON) & (steps == np.floor(steps))):
            raise InvalidInput(f"each input row is a step ahead: a whole number 1-{MAX_HORIZON}")
        mean = loaded.model.forecast(int(steps.max())).mean
        return [float(mean[int(step) - 1]) for step in steps]

    def accuracy(self, loaded: LoadedModel, rows: Matrix, truth: Matrix | None) -> float | None:
        if truth is None or rows.shape[1] != 1 or len(rows) < 4:
            return None
        history = rows[:, 0]
        options = {**_FORMER, **loaded.parameters}
        if not np.all(history > 0):  # the champion's Box-Cox, where this history allows it
            options["boxcox"] = 0
        held = np.asarray(_fit(history, options, len(truth)).forecast(len(truth)).mean)
        error = mape(truth, held)
        return None if error is None else max(0.0, 1.0 - error)

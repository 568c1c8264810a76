"""The load forecaster (:func:`tenantry.ai.fit`) against seasonal-naive: MASE and time.

Series: the load traces the project ships (``benchmarks/data/load_traces``, made by
:mod:`tenantry.ai.traces`: hourly traces forecast a day ahead, the 5-minute traces a day ahead
too; the development traces, which chose the default, then the test traces, rows named
``<trace>-test``, fixed before any forecast was run on them and used only to measure it) and
statsmodels' own data sets, which load offline from the installed package (co2 as monthly means,
sunspots with an 11-year period, Nile with none, El Nino's monthly sea surface temperatures).
Each is backtested at rolling origins, a horizon apart, the last leaving exactly one horizon;
MASE is scaled by each origin's in-sample seasonal-naive MAE (Hyndman & Koehler). Rows: MASE of
the default fit (damped Holt-Winters, no transform, likelihood), of the same model with its
parameters estimated for the horizon (``horizon=``), of both with an estimated Box-Cox transform
on a series whose outliers were replaced first (``boxcox=True, clean=True``; positive series
only); the same four with ``periods=`` (MSTL over a day and a week of buckets on every trace,
STL over the one period of a data set; Nile has none); and of seasonal-naive (the peer of all);
and the mean seconds of a fit. "MSTL h-step Guerrero cleaned" is the product's default setting
(:func:`tenantry.ai.fit_load`, the same fit on a positive series: the Box-Cox lambda by
Guerrero's method, issue 16's second round); "MSTL h-step Box-Cox cleaned" (the lambda by
maximum likelihood) was the default before. ``--quick`` uses one origin instead of seven, only
the plain fit and the default setting, and skips the 5-minute test trace (``QUICK_SKIPPED``: its
fits alone would double the run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from statsmodels.datasets import co2, elnino, nile, sunspots

from benchmarks.environment import Environment
from benchmarks.harness import Benchmark, Metric, Plan, Row, run_metrics
from tenantry.ai.backtest import Backtest, backtest
from tenantry.ai.forecast import LOAD_BOXCOX, fit
from tenantry.ai.series import BoxCox
from tenantry.ai.traces import ALL_TRACES, TEST_TRACES, read_trace

__all__ = ["BENCHMARK"]

FOLDER = Path(__file__).parent / "data" / "load_traces"
Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Series:
    name: str
    load: Callable[[], Array]
    period: int
    horizon: int
    #: MSTL's periods: a day and a week of buckets for every trace (the generator makes both),
    #: the one period of a data set
    periods: tuple[int, ...] | None


def _co2() -> Array:
    data = co2.load_pandas().data["co2"]
    return np.asarray(data.resample("MS").mean().ffill(), dtype=np.float64)


def _column(module: Any, column: str) -> Callable[[], Array]:
    def load() -> Array:
        return np.asarray(module.load_pandas().data[column], dtype=np.float64)

    return load


def _elnino() -> Array:
    return np.asarray(elnino.load_pandas().data.iloc[:, 1:], dtype=np.float64).ravel()


SERIES = (
    *(
        Series(
            s.name,
            partial(read_trace, FOLDER / f"{s.name}.csv"),
            s.period,
            s.buckets_a_day,
            (s.buckets_a_day, 7 * s.buckets_a_day),
        )
        for s in ALL_TRACES
    ),
    Series("co2 (monthly)", _co2, 12, 12, (12,)),
    Series("sunspots (yearly)", _column(sunspots, "SUNACTIVITY"), 11, 11, (11,)),
    Series("nile (yearly)", _column(nile, "volume"), 1, 10, None),
    Series("elnino (monthly)", _elnino, 12, 12, (12,)),
)
#: (row label, Box-Cox, outliers cleaned, parameters for the horizon, MSTL); the Box-Cox ones
#: need a positive series, the MSTL ones a series with ``periods``. The last is the product's
#: default (:func:`tenantry.ai.fit_load`: the lambda by Guerrero's method); the one before it
#: was the default until issue 16's second round (the lambda by maximum likelihood).
VARIANTS = (
    ("ETS", False, False, False, False),
    ("ETS h-step", False, False, True, False),
    ("ETS Box-Cox cleaned", True, True, False, False),
    ("ETS h-step Box-Cox cleaned", True, True, True, False),
    ("MSTL", False, False, False, True),
    ("MSTL h-step", False, False, True, True),
    ("MSTL Box-Cox cleaned", True, True, False, True),
    ("MSTL h-step Box-Cox cleaned", True, True, True, True),
    ("MSTL h-step Guerrero cleaned", LOAD_BOXCOX, True, True, True),
)
METHODS = (*(v[0] for v in VARIANTS), "seasonal-naive")
#: What ``--quick`` (a smoke test) measures: the product's default and the plain fit (the
#: seasonal-naive row comes from the plain fit's backtest).
QUICK_VARIANTS = (VARIANTS[0], VARIANTS[-1])
#: What ``--quick`` leaves out to stay near two minutes: the 5-minute test trace (an MSTL fit of
#: 18,000 points takes 45-95 s; the development one stays in).
QUICK_SKIPPED = frozenset(s.name for s in TEST_TRACES if s.bucket_seconds < 3600)


def name(series: str, method: str) -> str:
    return f"forecast MASE {series}, {method}"


def fit_name(series: str, method: str) -> str:
    return f"forecast fit seconds {series}, {method}"


OPERATIONS = (
    *(name(s.name, m) for s in SERIES for m in METHODS),
    *(fit_name(s.name, m) for s in SERIES for m in METHODS[:-1]),
)


@cache
def evaluate(
    series: Series, *, boxcox: BoxCox, clean: bool, multistep: bool, mstl: bool, origins: int
) -> Backtest:
    y = series.load()
    return backtest(
        y,
        series.period,
        series.horizon,
        origins,
        fitter=lambda history: fit(
            history,
            series.period,
            periods=series.periods if mstl else None,
            boxcox=boxcox,
            clean=clean,
            horizon=series.horizon if multistep else None,
        ),
    )


def metrics(
    origins: int,
    variants: tuple[tuple[str, BoxCox, bool, bool, bool], ...],
    skipped: frozenset[str] = frozenset(),
) -> list[Metric]:
    out = []
    for s in SERIES:
        if s.name in skipped:
            continue
        naive = name(s.name, "seasonal-naive")
        count = origins * s.horizon
        positive = bool(np.all(s.load() > 0))  # Box-Cox needs it (sunspots has zeros)
        for method, boxcox, clean, multistep, mstl in variants:
            if (boxcox is not False and not positive) or (mstl and s.periods is None):
                continue
            ev = partial(
                evaluate,
                s,
                boxcox=boxcox,
                clean=clean,
                multistep=multistep,
                mstl=mstl,
                origins=origins,
            )
            out.append(Metric(name(s.name, method), lambda ev=ev: ev().mase, "MASE", naive, count))
            out.append(
                Metric(
                    fit_name(s.name, method),
                    lambda ev=ev: ev().fit_seconds / origins,
                    "s",
                    count=origins,
                )
            )
        first = partial(
            evaluate, s, boxcox=False, clean=False, multistep=False, mstl=False, origins=origins
        )
        out.append(Metric(naive, lambda ev=first: ev().baseline_mase, "MASE", count=count))
    return out


async def run(env: Environment, plan: Plan) -> list[Row]:
    del env
    quick = plan.iterations < 1000
    found = metrics(1, QUICK_VARIANTS, QUICK_SKIPPED) if quick else metrics(7, VARIANTS)
    return run_metrics(found, plan, module="forecast")


BENCHMARK = Benchmark(name="forecast", operations=OPERATIONS, run=run)

"""Load traces the project generates and ships: per-tenant request rates with known structure.

Each trace is a tenant's requests per second, one value per bucket (an hour, or five minutes),
built from a daily profile, a weekly profile (weekends differ), a slow trend, autocorrelated
multiplicative noise (an AR(1) process in the log: a busy hour tends to be followed by another),
a few spikes (a promotion, a batch job gone wrong) and Poisson counting noise on top. The
generator is deterministic (a seed per trace), and ``benchmarks/data/load_traces/`` holds its
output as CSV, so a benchmark reads the same numbers on every machine; a test checks the files
still match the generator.

Lengths come from what a production forecast can read, not from the forecaster's scores: the
hourly traces are 13 weeks (91 days), so the last backtest origin a day before the end fits on
90 days of hourly history, the PREMIUM tier's retention of hourly buckets
(:data:`tenantry.monitoring.retention.RETENTION`); the 5-minute trace is 9 weeks (63 days,
18,144 points), the most whole weeks under the forecaster's ``MAX_SERIES_LENGTH`` (20,000; the
service keeps no 5-minute series past 2 days, so it stands for a series a user trains on). The
traces were 6 weeks and 2 weeks long before (issue 16); everything else (seeds, profiles,
noise, spikes) is as it was, except ``growth``, the change over the whole trace, scaled with
the length so the growth a day is the same (retail 0.25 over 42 days, batch -0.15 over 42,
saas 0.1 over 14). The random draws depend on the length, so the values are new ones.

:data:`TRACES` chose the forecaster's default setting, so they are its development set; a
score on them is not an honest estimate of how it does on a new tenant. :data:`TEST_TRACES`
are the same four specs with new seeds (``seed + 100``) and names ending ``-test``: the same
kind of tenant, new noise, spikes where the specs put them. They were fixed (and shipped)
before any forecast was run on them (issue 16), and are for measuring a default once chosen,
never for choosing one. :data:`ALL_TRACES` is both, the files ``write_traces`` makes.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALL_TRACES",
    "TEST_SEED_OFFSET",
    "TEST_TRACES",
    "TRACES",
    "TraceSpec",
    "generate_trace",
    "read_trace",
    "write_traces",
]

HOUR = 3600


@dataclass(frozen=True, slots=True)
class TraceSpec:
    """How one tenant's trace is made.

    ``daily`` gives the relative rate at each hour of the day (interpolated between hours for
    finer buckets), ``weekend`` the factor on Saturday and Sunday; ``growth`` is the relative
    change of the base rate over the whole trace; ``spikes`` are (start bucket, buckets, factor).
    ``noise`` and ``slow_noise`` are the standard deviations of the fast and slow log-noise.
    ``period`` is the seasonal period a forecaster should use (in buckets).
    """

    name: str
    seed: int
    base_rps: float
    days: int
    bucket_seconds: int
    daily: tuple[float, ...]
    weekend: float
    growth: float
    noise: float
    slow_noise: float
    slow_hours: float
    spikes: tuple[tuple[int, int, float], ...]
    period: int

    @property
    def length(self) -> int:
        return self.days * self.buckets_a_day

    @property
    def buckets_a_day(self) -> int:
        return 86_400 // self.bucket_seconds


#: Office hours, a lunch dip; weekends quiet.
BUSINESS = (
    0.15, 0.12, 0.1, 0.1, 0.12, 0.2, 0.4, 0.7, 1.0, 1.15, 1.2, 1.1,
    0.95, 1.1, 1.2, 1.15, 1.05, 0.85, 0.6, 0.45, 0.35, 0.28, 0.22, 0.18,
)  # fmt: skip
#: Evenings: streaming and shopping after work.
EVENING = (
    0.35, 0.25, 0.18, 0.14, 0.12, 0.13, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55,
    0.6, 0.6, 0.58, 0.6, 0.7, 0.85, 1.05, 1.3, 1.45, 1.4, 1.0, 0.6,
)  # fmt: skip
#: Nightly batch jobs over a steady daytime API load.
BATCH = (
    0.9, 1.6, 1.8, 1.7, 1.2, 0.7, 0.5, 0.55, 0.6, 0.65, 0.65, 0.65,
    0.6, 0.65, 0.65, 0.65, 0.6, 0.6, 0.55, 0.5, 0.5, 0.5, 0.55, 0.7,
)  # fmt: skip

TRACES: tuple[TraceSpec, ...] = (
    TraceSpec("retail-hourly", 11, 120.0, 91, HOUR, BUSINESS, 0.45, 0.25 * 91 / 42, 0.06, 0.1,
              12.0, ((200, 4, 2.5), (700, 3, 1.8)), 168),
    TraceSpec("media-hourly", 12, 300.0, 91, HOUR, EVENING, 1.3, 0.0, 0.08, 0.12, 8.0,
              ((415, 2, 3.0), (960, 2, 2.0)), 168),
    TraceSpec("batch-hourly", 13, 40.0, 91, HOUR, BATCH, 0.9, -0.15 * 91 / 42, 0.1, 0.1, 6.0,
              ((100, 6, 2.0), (600, 2, 2.2)), 24),
    TraceSpec("saas-5min", 14, 25.0, 63, 300, BUSINESS, 0.3, 0.1 * 63 / 14, 0.08, 0.1, 6.0,
              ((2300, 18, 2.0),), 288),
)  # fmt: skip
#: How the test traces' seeds differ from the development ones'.
TEST_SEED_OFFSET = 100
#: The held-out test set: :data:`TRACES`' specs with new seeds, named ``<name>-test``.
TEST_TRACES: tuple[TraceSpec, ...] = tuple(
    replace(spec, name=f"{spec.name}-test", seed=spec.seed + TEST_SEED_OFFSET) for spec in TRACES
)
#: Every shipped trace: the development set, then the test set.
ALL_TRACES: tuple[TraceSpec, ...] = TRACES + TEST_TRACES


def _profile(spec: TraceSpec, hours: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The daily profile at fractional hours, interpolated around the clock."""
    points = np.asarray((*spec.daily, spec.daily[0]), dtype=np.float64)
    return np.interp(hours % 24, np.arange(25, dtype=np.float64), points)


def generate_trace(spec: TraceSpec) -> npt.NDArray[np.float64]:
    """The trace's requests per second, one value per bucket (deterministic in ``spec.seed``)."""
    rng = np.random.default_rng(spec.seed)
    n = spec.length
    seconds = np.arange(n, dtype=np.float64) * spec.bucket_seconds
    hours = seconds / HOUR
    weekday = (seconds // 86_400).astype(np.int64) % 7  # day 0 is a Monday
    rate = spec.base_rps * _profile(spec, hours)
    rate *= np.where(weekday >= 5, spec.weekend, 1.0)
    rate *= 1.0 + spec.growth * np.arange(n) / n
    # two AR(1) processes in the log: a fast one (correlation decaying over about an hour) and
    # a slow one (a busier afternoon, a quiet day: decaying over ``slow_hours``)
    ar = np.zeros(n)
    for sigma, tau_hours in ((spec.noise, 1.0), (spec.slow_noise, spec.slow_hours)):
        phi = math.exp(-spec.bucket_seconds / (HOUR * tau_hours))
        shocks = rng.normal(0.0, sigma * math.sqrt(1 - phi * phi), n)
        level = rng.normal(0.0, sigma)
        for i in range(n):
            level = phi * level + shocks[i]
            ar[i] += level
    rate *= np.exp(ar)
    for start, length, factor in spec.spikes:
        rate[start : start + length] *= factor
    counts = rng.poisson(rate * spec.bucket_seconds)
    return np.asarray(counts / spec.bucket_seconds, dtype=np.float64)


def write_traces(folder: Path, specs: Sequence[TraceSpec] = ALL_TRACES) -> list[Path]:
    """Write each trace to ``folder/<name>.csv`` (``bucket_start_s,rps``); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in specs:
        path = folder / f"{spec.name}.csv"
        with path.open("w", newline="") as f:
            out = csv.writer(f, lineterminator="\n")
            out.writerow(["bucket_start_s", "rps"])
            for i, value in enumerate(generate_trace(spec)):
                out.writerow([i * spec.bucket_seconds, f"{value:.6g}"])
        paths.append(path)
    return paths


def read_trace(path: Path) -> npt.NDArray[np.float64]:
    """A trace written by :func:`write_traces`: its values, in bucket order."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return np.asarray([float(row["rps"]) for row in rows], dtype=np.float64)

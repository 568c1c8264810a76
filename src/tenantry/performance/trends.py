"""A trend: the least-squares slope of a series over its window, and its direction.

The slope is per hour, in the series' unit. The direction is ``rising`` or ``falling`` when the
fitted line moves by more than ``flat`` (5 %) of the series' mean magnitude over the window,
else ``stable``; ``unknown`` with fewer than 3 points. ``r2`` says how much of the variation the
line explains (a rising trend with r2 0.05 is mostly noise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict

__all__ = ["Trend", "trend_of"]


class Trend(BaseModel):
    """A series' trend over the window."""

    model_config = ConfigDict(frozen=True)

    direction: str
    slope_per_hour: float
    r2: float
    mean: float | None
    last: float | None
    points: int


def trend_of(points: Sequence[tuple[datetime, float]], *, flat: float = 0.05) -> Trend:
    """The trend of ``points`` (time, value); see the module docstring."""
    n = len(points)
    if n == 0:
        return Trend(
            direction="unknown", slope_per_hour=0.0, r2=0.0, mean=None, last=None, points=0
        )
    origin = points[0][0]
    xs = [(t - origin).total_seconds() / 3600 for t, _ in points]
    ys = [v for _, v in points]
    mean_x, mean_y = math.fsum(xs) / n, math.fsum(ys) / n
    if n < 3:
        return Trend(
            direction="unknown", slope_per_hour=0.0, r2=0.0, mean=mean_y, last=ys[-1], points=n
        )
    sxx = math.fsum((x - mean_x) ** 2 for x in xs)
    sxy = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    syy = math.fsum((y - mean_y) ** 2 for y in ys)
    slope = sxy / sxx if sxx > 0 else 0.0
    r2 = (sxy * sxy) / (sxx * syy) if sxx > 0 and syy > 0 else 0.0
    change = slope * (xs[-1] - xs[0])
    scale = math.fsum(abs(y) for y in ys) / n
    if abs(change) <= flat * scale or change == 0:
        direction = "stable"
    else:
        direction = "rising" if change > 0 else "falling"
    return Trend(
        direction=direction,
        slope_per_hour=slope,
        r2=round(r2, 4),
        mean=mean_y,
        last=ys[-1],
        points=n,
    )

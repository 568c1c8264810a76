"""What the threat analysis answers: threat levels, and the report of a tenant's window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ORDER",
    "Burst",
    "Signal",
    "SubjectThreat",
    "SubjectType",
    "ThreatLevel",
    "ThreatReport",
]


class ThreatLevel(StrEnum):
    """Ordered: ``LOW < MEDIUM < HIGH < CRITICAL`` (comparisons use the order, not the text)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for LOW .. 3 for CRITICAL."""
        return _RANKS[self]

    @classmethod
    def of_rank(cls, rank: int) -> ThreatLevel:
        """The level of ``rank`` (clamped to 0..3)."""
        return ORDER[max(0, min(rank, 3))]

    @classmethod
    def highest(cls, levels: Sequence[ThreatLevel]) -> ThreatLevel:
        """The highest of ``levels`` (LOW for none)."""
        best = 0
        for level in levels:
            best = max(best, _RANKS[level])
        return ORDER[best]

    def at_least(self, other: ThreatLevel | str) -> bool:
        """``self >= other``."""
        return self.rank >= ThreatLevel(other).rank

    def __lt__(self, other: str) -> bool:
        return self.rank < ThreatLevel(other).rank

    def __le__(self, other: str) -> bool:
        return self.rank <= ThreatLevel(other).rank

    def __gt__(self, other: str) -> bool:
        return self.rank > ThreatLevel(other).rank

    def __ge__(self, other: str) -> bool:
        return self.rank >= ThreatLevel(other).rank


ORDER = (ThreatLevel.LOW, ThreatLevel.MEDIUM, ThreatLevel.HIGH, ThreatLevel.CRITICAL)
_RANKS = {level: n for n, level in enumerate(ORDER)}


SubjectType = Literal["user", "ip", "tenant"]


@dataclass(frozen=True, slots=True)
class Signal:
    """One reason for a subject's level."""

    kind: str
    level: ThreatLevel
    count: int
    reason: str


@dataclass(frozen=True, slots=True)
class SubjectThreat:
    """A user (``principal_id``), an IP, or the tenant itself, with its level and signals."""

    subject_type: SubjectType
    subject: str
    level: ThreatLevel
    signals: list[Signal]
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class Burst:
    """A kind far above the tenant's baseline rate (robust z-score of per-window counts)."""

    kind: str
    count: int
    baseline_median: float
    z_score: float
    level: ThreatLevel


class ThreatReport(BaseModel):
    """The analysis of one tenant's window ``[window_start, window_end)``.

    Its parts are plain dataclasses (hundreds per report: cheap to build, and serialized by
    pydantic like models); the analyzer builds reports from trusted values without validation.
    """

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    window_start: datetime
    window_end: datetime
    level: ThreatLevel
    #: In [0, 1]: by the tenant's detector when ``anomaly_method`` is ``model`` (its score),
    #: else the statistic of the window's counts against the baseline (see ``detector.py``).
    anomaly_score: float
    total_events: int
    counts: dict[str, int]
    users: dict[str, ThreatLevel]
    ips: dict[str, ThreatLevel]
    subjects: list[SubjectThreat]
    bursts: list[Burst]
    anomaly_method: Literal["statistical", "model"] = "statistical"
    #: The registry version of the detector that scored the window (0: the statistic).
    anomaly_model_version: int = 0
    #: Whether the detector's score reached its decision threshold (None: the statistic).
    model_anomaly: bool | None = None

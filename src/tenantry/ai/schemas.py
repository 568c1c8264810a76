"""What the AI registry and manager return."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ModelVersionView", "ModelView", "Prediction", "TrainingResult", "VersionFile"]


@dataclass(frozen=True, slots=True)
class ModelVersionView:
    """One immutable version, without its file."""

    version: int
    created_at: datetime
    file_format: str
    file_bytes: int
    sha256: str
    metrics: dict[str, Any]
    parameters: dict[str, Any]
    lineage: dict[str, Any]
    trained_by: str


@dataclass(frozen=True, slots=True)
class ModelView:
    """A model: its type, its aliases (``{"champion": 3}``) and its kept versions, newest first."""

    name: str
    model_type: str
    aliases: dict[str, int]
    versions: list[ModelVersionView]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class VersionFile:
    """A version's file as stored, and what loading it needs."""

    model_name: str
    model_type: str
    version: int
    file_format: str
    file: bytes = field(repr=False)
    sha256: bytes = field(repr=False)
    parameters: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrainingResult:
    """What a training made: the new version (the challenger), its accuracy and the champion's
    on the same held-out rows, and whether it was promoted (and why, or why not)."""

    model_name: str
    model_type: str
    version: int
    metrics: dict[str, Any]
    accuracy: float | None
    champion_version: int | None
    champion_accuracy: float | None
    promoted: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Prediction:
    """A prediction per input row (one, for a single row given as such)."""

    model_name: str
    version: int
    outputs: list[Any]

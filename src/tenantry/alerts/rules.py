"""Alert rules in the documents' YAML form, and the state machine each rule's alert moves through.

    alerts:
      - name: high_session_creation_latency
        condition: session_creation_time_p95 > 100ms
        severity: warning
        for: 5m                      # optional: how long it must hold before firing
        labels: {team: sessions}     # optional: added to the alert's labels for routing
        annotations: {summary: "p95 above 100 ms"}

:func:`load_rules` reads that text (``yaml.safe_load``'s rules, and no aliases, so a small text
cannot expand into a large one) into :class:`AlertRule` models; every problem is listed in one
:class:`~tenantry.errors.InvalidInput`, each issue located as ``("alerts", index, field)``.

:func:`next_state` is the state machine, a pure function of the previous :class:`AlertState`,
whether the condition holds, and the evaluation time (injected, never read from a clock)::

    inactive --holds--> pending --held for `for`--> firing --stops holding--> resolved
       ^                  |                                                     |
       +--stops holding---+                 +---- holds again: pending (or firing) ---+
       +------------------- retention has passed since resolving -------------------+

With ``for`` zero a holding condition fires at once. A pending alert that stops holding was never
announced, so it goes back to inactive, not to resolved (as in Prometheus).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
)

from tenantry.alerts.durations import format_duration, parse_duration
from tenantry.alerts.expressions import Condition, parse_condition
from tenantry.errors import InvalidInput, Issue

__all__ = [
    "DEFAULT_RESOLVED_RETENTION",
    "MAX_RULES",
    "MAX_RULES_TEXT",
    "AlertRule",
    "AlertSeverity",
    "AlertState",
    "AlertStatus",
    "load_rules",
    "next_state",
]

#: The most rules one text may hold (the benchmark evaluates 10,000).
MAX_RULES = 10_000
#: The largest rules text, in characters.
MAX_RULES_TEXT = 4 * 1024 * 1024
#: How long a resolved alert stays resolved (and visible) before it becomes inactive.
DEFAULT_RESOLVED_RETENTION = timedelta(minutes=15)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}", re.ASCII)
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}", re.ASCII)
_MAX_LABELS = 32
_MAX_VALUE = 2048


class AlertSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    HIGH = "high"
    CRITICAL = "critical"


def _condition(value: object) -> Condition:
    if isinstance(value, Condition):
        return value
    if not isinstance(value, str):
        raise ValueError("a condition is a string such as 'anomaly_score > 0.9'")
    try:
        return parse_condition(value)
    except InvalidInput as error:
        raise ValueError(error.detail) from None


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return timedelta(0)
    if not isinstance(value, str):
        raise ValueError("a duration is a string such as '5m'")
    try:
        return parse_duration(value)
    except InvalidInput as error:
        raise ValueError(error.detail) from None


ConditionField = Annotated[
    Condition, PlainValidator(_condition), PlainSerializer(lambda c: c.source)
]
DurationField = Annotated[timedelta, PlainValidator(_duration), PlainSerializer(format_duration)]


class AlertRule(BaseModel):
    """One rule: when ``condition`` has held for ``hold_for`` (YAML ``for``), an alert named
    ``name`` with ``severity``, ``labels`` and ``annotations`` fires."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    condition: ConditionField
    severity: AlertSeverity
    hold_for: DurationField = Field(default=timedelta(0), alias="for")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                "a rule name is 1 to 128 letters, digits, '_', '.', ':' or '-', not starting "
                "with a digit"
            )
        return value

    @field_validator("labels", "annotations")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > _MAX_LABELS:
            raise ValueError(f"at most {_MAX_LABELS} entries")
        for key, text in value.items():
            if not _LABEL.fullmatch(key):
                raise ValueError(f"invalid name {key!r}: letters, digits and '_'")
            if len(text) > _MAX_VALUE:
                raise ValueError(f"the value of {key!r} is longer than {_MAX_VALUE} characters")
        return value

    def alert_labels(self) -> dict[str, str]:
        """The labels the rule's alert carries: ``alertname``, ``severity``, then its own."""
        return {"alertname": self.name, "severity": self.severity.value, **self.labels}


#: libyaml's safe loader where PyYAML was built with it (4x faster on 10,000 rules), else PyYAML's.
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _refuse_aliases(text: str) -> None:
    """Refuse anchors and aliases (no billion laughs): a scan of the parser's events."""
    for event in yaml.parse(text, Loader=_SAFE_LOADER):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
            raise InvalidInput(
                f"rules YAML uses an alias at line {line}, column {column}: "
                "write each rule out in full",
                issues=[Issue(("yaml", line, column), "alias", "yaml")],
            )


def _issue(error: Mapping[str, Any], index: int) -> Issue:
    loc: tuple[str | int, ...] = ("alerts", index, *(str(part) for part in error["loc"]))
    return Issue(loc=loc, msg=str(error["msg"]), type=str(error["type"]))


def load_rules(text: str) -> list[AlertRule]:
    """The rules in ``text``: ``alerts: [...]`` as the documents write it, or a bare list."""
    if len(text) > MAX_RULES_TEXT:
        raise InvalidInput(f"rules text is longer than {MAX_RULES_TEXT} characters")
    try:
        _refuse_aliases(text)
        document = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "not YAML"
        raise InvalidInput(f"rules are not valid YAML{where}: {problem}") from None
    if isinstance(document, dict) and set(document) == {"alerts"}:
        document = document["alerts"]
    if not isinstance(document, list):
        raise InvalidInput("rules are a list under 'alerts:' (alerts: [{name, condition, ...}])")
    if len(document) > MAX_RULES:
        raise InvalidInput(f"more than {MAX_RULES} rules")
    rules: list[AlertRule] = []
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(document):
        try:
            rule = AlertRule.model_validate(entry)
        except ValidationError as error:
            issues.extend(_issue(e, index) for e in error.errors(include_url=False))
            continue
        if rule.name in seen:
            issues.append(
                Issue(("alerts", index, "name"), f"same name as rule {seen[rule.name]}", "unique")
            )
        seen.setdefault(rule.name, index)
        rules.append(rule)
    if issues:
        listed = "; ".join(f"{'.'.join(map(str, i.loc))}: {i.msg}" for i in issues[:5])
        more = f" (and {len(issues) - 5} more)" if len(issues) > 5 else ""
        raise InvalidInput(f"invalid rules: {listed}{more}", issues=issues)
    return rules


# --- the state machine ------------------------------------------------------------------------


class AlertStatus(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertState:
    """Where a rule's alert stands. ``active_since``: when the condition began to hold (pending
    and firing); ``fired_at``: when it began firing; ``resolved_at``: when it stopped (resolved);
    ``evaluated_at``: the last evaluation."""

    status: AlertStatus = AlertStatus.INACTIVE
    active_since: datetime | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    evaluated_at: datetime | None = None


def _held_long_enough(since: datetime, now: datetime, hold_for: timedelta) -> bool:
    return now - since >= hold_for


def next_state(
    previous: AlertState,
    holds: bool,
    now: datetime,
    *,
    hold_for: timedelta = timedelta(0),
    retention: timedelta = DEFAULT_RESOLVED_RETENTION,
) -> AlertState:
    """The state after an evaluation at ``now`` that found the condition ``holds`` (or not).

    ``now`` must be timezone-aware and not before the previous evaluation; otherwise
    :class:`InvalidInput`. Pass ``rule.hold_for`` as ``hold_for``.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput("evaluation time must be timezone-aware")
    if previous.evaluated_at is not None and now < previous.evaluated_at:
        raise InvalidInput(
            f"evaluation at {now} is before the previous one, {previous.evaluated_at}"
        )
    if hold_for < timedelta(0) or retention < timedelta(0):
        raise InvalidInput("'for' and the retention cannot be negative")
    status = previous.status
    if holds:
        if status in (AlertStatus.PENDING, AlertStatus.FIRING) and previous.active_since:
            since = previous.active_since
        else:
            since = now
        if status is AlertStatus.FIRING:
            return replace(previous, evaluated_at=now)
        if _held_long_enough(since, now, hold_for):
            return AlertState(AlertStatus.FIRING, since, now, None, now)
        return AlertState(AlertStatus.PENDING, since, None, None, now)
    if status is AlertStatus.FIRING:
        return AlertState(AlertStatus.RESOLVED, None, previous.fired_at, now, now)
    resolved_at = previous.resolved_at
    if status is AlertStatus.RESOLVED and resolved_at and now - resolved_at < retention:
        return replace(previous, evaluated_at=now)
    return AlertState(AlertStatus.INACTIVE, evaluated_at=now)

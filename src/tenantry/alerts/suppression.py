"""Silences and inhibition with Alertmanager's semantics, as pure functions.

A :class:`Silence` mutes the alerts all its matchers match from ``starts_at`` until (not
including) ``ends_at``. As Alertmanager requires, it has at least one matcher, and not every one
of its matchers may match the empty string (a silence must not mute everything).

An :class:`InhibitRule` mutes an alert matching its target matchers while some *firing* alert
matches its source matchers and has the same value for each ``equal`` label (a label missing on
both counts as equal). As in Alertmanager's ``inhibit.go``, when the alert matches the source
matchers too, a firing alert that also matches the target matchers does not inhibit it: alerts
on both sides of a rule do not inhibit each other, nor themselves. A firing alert inhibits even
when it is itself silenced or inhibited.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tenantry.alerts.matchers import Matcher, matches_all
from tenantry.alerts.routing import parse_matchers
from tenantry.errors import InvalidInput

__all__ = [
    "InhibitRule",
    "Silence",
    "active_silences",
    "inhibited_by",
    "is_inhibited",
    "is_silenced",
    "parse_inhibit_rules",
]

_RULE_KEYS = frozenset(
    {
        "source_matchers",
        "source_match",
        "source_match_re",
        "target_matchers",
        "target_match",
        "target_match_re",
        "equal",
    }
)


@dataclass(frozen=True, slots=True)
class Silence:
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    id: str = ""
    comment: str = ""

    def __post_init__(self) -> None:
        if not self.matchers:
            raise InvalidInput("a silence needs at least one matcher")
        if all(m.matches({}) for m in self.matchers):
            raise InvalidInput("at least one of a silence's matchers must not match ''")
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise InvalidInput("a silence's times must be timezone-aware")
        if self.ends_at < self.starts_at:
            raise InvalidInput("a silence cannot end before it starts")

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        return self.active(now) and matches_all(self.matchers, labels)


def active_silences(
    labels: Mapping[str, str], silences: Iterable[Silence], now: datetime
) -> list[Silence]:
    """The silences muting an alert with ``labels`` at ``now``."""
    return [silence for silence in silences if silence.mutes(labels, now)]


def is_silenced(labels: Mapping[str, str], silences: Iterable[Silence], now: datetime) -> bool:
    return any(silence.mutes(labels, now) for silence in silences)


@dataclass(frozen=True, slots=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


def parse_inhibit_rules(config: object) -> list[InhibitRule]:
    """Alertmanager's ``inhibit_rules:`` list (``source_matchers``, ``target_matchers``, the
    older ``source_match``/``_re`` and ``target_match``/``_re`` maps, ``equal``)."""
    if config is None:
        return []
    if not isinstance(config, list):
        raise InvalidInput("inhibit_rules is a list")
    rules: list[InhibitRule] = []
    for index, node in enumerate(config):
        path = f"inhibit_rules[{index}]"
        if not isinstance(node, Mapping):
            raise InvalidInput(f"{path}: a rule is a mapping")
        unknown = sorted(str(k) for k in node if k not in _RULE_KEYS)
        if unknown:
            raise InvalidInput(f"{path}: unknown keys {unknown}")
        equal: Any = node.get("equal") or []
        if not isinstance(equal, list) or not all(isinstance(e, str) for e in equal):
            raise InvalidInput(f"{path}: equal is a list of label names")
        rules.append(
            InhibitRule(
                parse_matchers(node, path, "source_"),
                parse_matchers(node, path, "target_"),
                tuple(equal),
            )
        )
    return rules


def inhibited_by(
    labels: Mapping[str, str],
    firing: Sequence[Mapping[str, str]],
    rules: Iterable[InhibitRule],
) -> tuple[InhibitRule, Mapping[str, str]] | None:
    """The rule, and the firing alert, that inhibit an alert with ``labels``; None if none do.
    Rules are tried in order, and for each the firing alerts in order."""
    for rule in rules:
        if not matches_all(rule.target, labels):
            continue
        both_sides = matches_all(rule.source, labels)
        for source in firing:
            if not matches_all(rule.source, source):
                continue
            if any(source.get(name, "") != labels.get(name, "") for name in rule.equal):
                continue
            if both_sides and matches_all(rule.target, source):
                continue
            return rule, source
    return None


def is_inhibited(
    labels: Mapping[str, str],
    firing: Sequence[Mapping[str, str]],
    rules: Iterable[InhibitRule],
) -> bool:
    return inhibited_by(labels, firing, rules) is not None

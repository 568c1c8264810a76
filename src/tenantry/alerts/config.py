"""A tenant's alert routing, as Alertmanager writes it: a ``route`` tree, ``inhibit_rules`` and
``silences``, in one YAML document (``PUT /alerts/routing``).

When a tenant has one, an alert's message goes to every receiver its labels reach in the tree
(:func:`~tenantry.alerts.routing.route`, ``continue`` included), unless a silence active at
that moment mutes it, or a firing alert of the same tenant inhibits it
(:func:`~tenantry.alerts.suppression.is_inhibited`). Without one, the rule's ``receiver`` label
or the receiver ``default`` is used. A silence is
``{matchers: [...], starts_at, ends_at, comment}``; times are ISO 8601 with a zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import yaml

from tenantry.alerts.routing import Route, parse_matchers, parse_route, route
from tenantry.alerts.suppression import (
    InhibitRule,
    Silence,
    is_inhibited,
    is_silenced,
    parse_inhibit_rules,
)
from tenantry.errors import InvalidInput

__all__ = ["MAX_CONFIG_TEXT", "RoutingConfig", "parse_routing"]

MAX_CONFIG_TEXT: Final = 256 * 1024
_MAX_SILENCES: Final = 1000
_KEYS: Final = frozenset({"route", "inhibit_rules", "silences"})
_SILENCE_KEYS: Final = frozenset({"matchers", "starts_at", "ends_at", "comment"})


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """A tenant's parsed routing: the tree, the inhibition rules, the silences."""

    tree: Route
    inhibit_rules: Sequence[InhibitRule]
    silences: Sequence[Silence]

    def receivers_for(
        self,
        labels: Mapping[str, str],
        firing: Sequence[Mapping[str, str]],
        now: datetime,
    ) -> list[str]:
        """The receivers an alert with ``labels`` goes to at ``now``: none if silenced or
        inhibited by one of the ``firing`` alerts."""
        if self.mutes(labels, firing, now):
            return []
        return list(dict.fromkeys(m.route.receiver for m in route(self.tree, labels)))

    def mutes(
        self, labels: Mapping[str, str], firing: Sequence[Mapping[str, str]], now: datetime
    ) -> bool:
        """Whether a silence of this document active at ``now`` or one of the ``firing``
        alerts (by the inhibition rules) mutes an alert with ``labels``."""
        if is_silenced(labels, self.silences, now):
            return True
        return is_inhibited(labels, [f for f in firing if f != labels], self.inhibit_rules)


def _time(value: object, path: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"{path}: not an ISO 8601 time") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(f"{path}: a time with its zone (2026-12-06T09:00:00Z)")
    return value


def _silences(value: object) -> list[Silence]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > _MAX_SILENCES:
        raise InvalidInput(f"silences is a list of at most {_MAX_SILENCES}")
    found: list[Silence] = []
    for index, node in enumerate(value):
        path = f"silences[{index}]"
        if not isinstance(node, Mapping):
            raise InvalidInput(f"{path}: a silence is a mapping")
        unknown = sorted(str(k) for k in node if k not in _SILENCE_KEYS)
        if unknown:
            raise InvalidInput(f"{path}: unknown keys {unknown}")
        comment = node.get("comment", "")
        if not isinstance(comment, str) or len(comment) > 1000:
            raise InvalidInput(f"{path}.comment: a string of at most 1,000 characters")
        found.append(
            Silence(
                parse_matchers(node, path),
                _time(node.get("starts_at"), f"{path}.starts_at"),
                _time(node.get("ends_at"), f"{path}.ends_at"),
                comment=comment,
            )
        )
    return found


def parse_routing(text: str) -> RoutingConfig:
    """The routing in YAML ``text``, parsed (or :class:`InvalidInput` naming what is wrong)."""
    if not isinstance(text, str) or len(text) > MAX_CONFIG_TEXT:
        raise InvalidInput(f"routing is YAML text of at most {MAX_CONFIG_TEXT} characters")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        raise InvalidInput("routing is not valid YAML") from None
    if not isinstance(document, dict) or "route" not in document:
        raise InvalidInput("routing is a mapping with a 'route' (and 'inhibit_rules', 'silences')")
    unknown = sorted(str(k) for k in document if k not in _KEYS)
    if unknown:
        raise InvalidInput(f"unknown keys {unknown}: route, inhibit_rules and silences are known")
    if not isinstance(document.get("route"), Mapping):
        raise InvalidInput("route is a mapping (receiver, routes, matchers...)")
    return RoutingConfig(
        parse_route(document["route"]),
        parse_inhibit_rules(document.get("inhibit_rules")),
        _silences(document.get("silences")),
    )

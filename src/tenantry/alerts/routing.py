"""Alert routing with Alertmanager's semantics (its ``dispatch/route.go``), as pure functions.

:func:`parse_route` reads a route tree in Alertmanager's configuration form (a mapping, as from
YAML)::

    receiver: platform-ops
    group_by: [alertname, tenant]
    routes:
      - matchers: ['tenant="a"']
        receiver: tenant-a-slack
        group_wait: 10s
        routes:
          - matchers: ['severity=~"high|critical"']
            receiver: tenant-a-pager
            continue: true

and :func:`route` tells which routes an alert's labels reach, as Alertmanager does:

- every route starts from its parent's ``receiver``, ``group_by``, ``group_wait``,
  ``group_interval`` and ``repeat_interval`` (Alertmanager's defaults, 30s, 5m and 4h, at the
  root) and overrides what it sets; ``group_by: ['...']`` groups by every label, ``[]`` by none;
- the tree is walked depth first, children in order; a child matches when all its matchers do
  (``matchers``, and the older ``match`` and ``match_re`` maps); the first matching child ends the
  search at its level unless it says ``continue: true``; a route none of whose children match is
  itself the match;
- the root matches everything: it may not have matchers, nor ``continue``.

Each match carries the receiver, the effective settings, and the group key of the alert's
notification group (``{route key}:{group labels}``, spelled as Alertmanager spells it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from tenantry.alerts.durations import parse_duration
from tenantry.alerts.matchers import Matcher, matches_all, parse_matchers_text
from tenantry.errors import InvalidInput

__all__ = [
    "DEFAULT_GROUP_INTERVAL",
    "DEFAULT_GROUP_WAIT",
    "DEFAULT_REPEAT_INTERVAL",
    "GROUP_BY_ALL",
    "MAX_ROUTES",
    "Route",
    "RouteMatch",
    "RouteTiming",
    "group_key",
    "parse_matchers",
    "parse_route",
    "receivers",
    "route",
]

DEFAULT_GROUP_WAIT = timedelta(seconds=30)
DEFAULT_GROUP_INTERVAL = timedelta(minutes=5)
DEFAULT_REPEAT_INTERVAL = timedelta(hours=4)
#: ``group_by: ['...']``: group by every label of the alert.
GROUP_BY_ALL = "..."
#: The most routes one tree may hold, and how deep it may nest.
MAX_ROUTES = 2000
_MAX_DEPTH = 16
_KEYS = frozenset(
    {
        "receiver",
        "group_by",
        "continue",
        "matchers",
        "match",
        "match_re",
        "group_wait",
        "group_interval",
        "repeat_interval",
        "routes",
    }
)
_TIMINGS = ("group_wait", "group_interval", "repeat_interval")


@dataclass(frozen=True, slots=True)
class RouteTiming:
    group_wait: timedelta = DEFAULT_GROUP_WAIT
    group_interval: timedelta = DEFAULT_GROUP_INTERVAL
    repeat_interval: timedelta = DEFAULT_REPEAT_INTERVAL


@dataclass(frozen=True, slots=True)
class Route:
    """A route with its settings after inheritance. ``group_by`` None means every label;
    ``path`` names it in the configuration (``route.routes[0]``); ``key`` is Alertmanager's."""

    path: str
    key: str
    receiver: str
    matchers: tuple[Matcher, ...]
    continue_: bool
    group_by: tuple[str, ...] | None
    timing: RouteTiming
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """A route an alert reached, and the key of the notification group it joins there."""

    route: Route
    group_key: str
    group_labels: tuple[tuple[str, str], ...]

    @property
    def receiver(self) -> str:
        return self.route.receiver


def _fail(path: str, message: str) -> InvalidInput:
    return InvalidInput(f"{path}: {message}")


def _string_map(node: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    value = node.get(key) or {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _fail(path, f"{key} is a map of label names to strings")
    return dict(value)


def parse_matchers(node: Mapping[str, Any], path: str, prefix: str = "") -> tuple[Matcher, ...]:
    """``{prefix}matchers`` (a list of matcher strings) with the older ``{prefix}match`` and
    ``{prefix}match_re`` maps, as Alertmanager reads them on routes and inhibition rules."""
    texts = node.get(f"{prefix}matchers") or []
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise _fail(path, f"{prefix}matchers is a list of strings such as 'severity=\"high\"'")
    found: list[Matcher] = []
    try:
        for text in texts:
            found.extend(parse_matchers_text(text))
        for name, value in _string_map(node, f"{prefix}match", path).items():
            found.append(Matcher(name, "=", value))
        for name, value in _string_map(node, f"{prefix}match_re", path).items():
            found.append(Matcher(name, "=~", value))
    except InvalidInput as error:
        raise _fail(path, error.detail) from None
    # Alertmanager sorts a route's matchers (by name, then value, then type) for its key
    return tuple(sorted(found, key=lambda m: (m.name, m.value, m.op)))


def _group_by(
    node: Mapping[str, Any], path: str, parent: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    if "group_by" not in node or node["group_by"] is None:
        return parent
    names = node["group_by"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _fail(path, "group_by is a list of label names")
    if GROUP_BY_ALL in names:
        if len(names) > 1:
            raise _fail(path, "group_by '...' cannot be combined with label names")
        return None
    if len(set(names)) != len(names):
        raise _fail(path, "group_by names a label twice")
    return tuple(names)


def _timing(node: Mapping[str, Any], path: str, parent: RouteTiming) -> RouteTiming:
    values: dict[str, timedelta] = {}
    for key in _TIMINGS:
        if node.get(key) is None:
            values[key] = getattr(parent, key)
            continue
        try:
            values[key] = parse_duration(node[key])
        except InvalidInput as error:
            raise _fail(path, f"{key}: {error.detail}") from None
        if key != "group_wait" and values[key] <= timedelta(0):
            raise _fail(path, f"{key} cannot be zero")
    return RouteTiming(**values)


class _Builder:
    def __init__(self) -> None:
        self.count = 0

    def build(self, node: object, path: str, parent: Route | None, depth: int) -> Route:
        if not isinstance(node, Mapping):
            raise _fail(path, "a route is a mapping")
        self.count += 1
        if self.count > MAX_ROUTES:
            raise _fail(path, f"more than {MAX_ROUTES} routes")
        if depth > _MAX_DEPTH:
            raise _fail(path, f"routes nest deeper than {_MAX_DEPTH} levels")
        unknown = sorted(str(k) for k in node if k not in _KEYS)
        if unknown:
            raise _fail(path, f"unknown or unsupported keys {unknown}")
        matchers = parse_matchers(node, path)
        receiver = node.get("receiver") or (parent.receiver if parent else None)
        if not isinstance(receiver, str):
            raise _fail(path, "receiver is a string, and the root route needs one")
        if parent is None and (matchers or node.get("continue")):
            raise _fail(path, "the root route matches everything: no matchers, no continue")
        if not isinstance(node.get("continue", False), bool):
            raise _fail(path, "continue is true or false")
        own = "{" + ",".join(str(m) for m in matchers) + "}"
        route = Route(
            path=path,
            key=own if parent is None else f"{parent.key}/{own}",
            receiver=receiver,
            matchers=matchers,
            continue_=bool(node.get("continue", False)),
            group_by=_group_by(node, path, parent.group_by if parent else ()),
            timing=_timing(node, path, parent.timing if parent else RouteTiming()),
        )
        children = node.get("routes") or []
        if not isinstance(children, list):
            raise _fail(path, "routes is a list")
        built = tuple(
            self.build(child, f"{path}.routes[{i}]", route, depth + 1)
            for i, child in enumerate(children)
        )
        return replace(route, routes=built)


def parse_route(config: Mapping[str, Any]) -> Route:
    """The route tree in ``config`` (Alertmanager's ``route:``), or :class:`InvalidInput`."""
    return _Builder().build(config, "route", None, 0)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def group_key(at: Route, labels: Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The group key of an alert with ``labels`` on route ``at``, and its group labels."""
    if at.group_by is None:
        chosen = sorted(labels.items())
    else:
        chosen = sorted((name, labels[name]) for name in at.group_by if name in labels)
    shown = ", ".join(f"{name}={_quote(value)}" for name, value in chosen)
    return f"{at.key}:{{{shown}}}", tuple(chosen)


def _walk(at: Route, labels: Mapping[str, str]) -> list[Route]:
    if not matches_all(at.matchers, labels):
        return []
    found: list[Route] = []
    for child in at.routes:
        reached = _walk(child, labels)
        found.extend(reached)
        if reached and not child.continue_:
            break
    return found or [at]


def route(tree: Route, labels: Mapping[str, str]) -> list[RouteMatch]:
    """The routes an alert with ``labels`` reaches, in Alertmanager's order (never empty)."""
    matches: list[RouteMatch] = []
    for reached in _walk(tree, labels):
        key, chosen = group_key(reached, labels)
        matches.append(RouteMatch(reached, key, chosen))
    return matches


def receivers(tree: Route) -> Sequence[str]:
    """Every receiver the tree names, each once, depth first."""
    seen: dict[str, None] = {tree.receiver: None}
    for child in tree.routes:
        seen.update(dict.fromkeys(receivers(child)))
    return tuple(seen)

"""Routing as Alertmanager does it: the documented example, inheritance, continue, group keys,
and the same routes, receivers and settings as amlint's simulation of Alertmanager's router
(checked by its authors against amtool and a running Alertmanager) on generated label sets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml
from amlint.routing import GROUP_BY_ALL as AMLINT_GROUP_BY_ALL
from amlint.routing import Router
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantry.alerts.durations import parse_duration
from tenantry.alerts.matchers import Matcher, parse_matcher
from tenantry.alerts.routing import RouteTiming, parse_route, receivers, route
from tenantry.errors import InvalidInput

#: The example of Alertmanager's configuration documentation (its "route" section).
DOCUMENTED = yaml.safe_load("""\
receiver: default-receiver
group_wait: 30s
group_interval: 5m
repeat_interval: 4h
group_by: [cluster, alertname]
routes:
- receiver: database-pager
  group_wait: 10s
  matchers:
  - service=~"mysql|cassandra"
- receiver: frontend-pager
  group_by: [product, environment]
  matchers:
  - team="frontend"
""")

#: A tenant's own routes beside the platform's, with everything Alertmanager's router has.
TENANTS = yaml.safe_load("""\
receiver: platform-ops
group_by: [alertname, tenant]
routes:
- matchers: ['scope="platform"']
  receiver: platform-pager
  group_by: ['...']
  continue: true
- matchers: ['tenant="a"']
  receiver: tenant-a-slack
  group_wait: 10s
  routes:
  - matchers: ['severity=~"high|critical"']
    receiver: tenant-a-pager
    repeat_interval: 1h
    continue: true
  - match_re: {service: 'api.*'}
    receiver: tenant-a-api
    group_by: []
  - match: {severity: info}
    receiver: tenant-a-quiet
    group_interval: 30m
- matchers: ['tenant=~"b|c"', 'env!="dev"']
  receiver: tenant-bc
  routes:
  - matchers: ['team!~"ops|sre"']
    receiver: tenant-bc-dev
- matchers: ['tenant!=""']
  receiver: any-tenant
  continue: true
- matchers: ['tenant=""']
  receiver: no-tenant
""")


def test_the_documented_example() -> None:
    tree = parse_route(DOCUMENTED)
    (default,) = route(tree, {"alertname": "X", "cluster": "eu", "service": "web"})
    assert default.receiver == "default-receiver"
    assert default.group_key == '{}:{alertname="X", cluster="eu"}'
    (mysql,) = route(tree, {"alertname": "X", "service": "mysql"})
    assert mysql.receiver == "database-pager"
    assert mysql.route.timing == RouteTiming(
        timedelta(seconds=10), timedelta(minutes=5), timedelta(hours=4)
    )
    assert mysql.group_key == '{}/{service=~"mysql|cassandra"}:{alertname="X"}'
    # anchored, as Alertmanager anchors: "mysql-replica" is not "mysql"
    assert route(tree, {"service": "mysql-replica"})[0].receiver == "default-receiver"
    (frontend,) = route(tree, {"team": "frontend", "product": "p", "environment": "prod"})
    assert frontend.receiver == "frontend-pager"
    assert frontend.group_labels == (("environment", "prod"), ("product", "p"))
    assert receivers(tree) == ("default-receiver", "database-pager", "frontend-pager")


def test_continue_group_by_all_and_inheritance() -> None:
    tree = parse_route(TENANTS)
    labels = {"alertname": "Down", "tenant": "a", "severity": "critical", "service": "api-gw"}
    matches = route(tree, labels)
    # tenant-a-pager continues to its next sibling; the tenant="a" route does not continue
    assert [m.receiver for m in matches] == ["tenant-a-pager", "tenant-a-api"]
    pager, api = matches
    assert pager.route.timing.group_wait == timedelta(seconds=10)  # from its parent
    assert pager.route.timing.repeat_interval == timedelta(hours=1)
    assert pager.group_labels == (("alertname", "Down"), ("tenant", "a"))
    assert api.group_key == '{}/{tenant="a"}/{service=~"api.*"}:{}'  # group_by: [] is no label
    (anyone,) = route(tree, {"tenant": "d"})
    assert anyone.receiver == "any-tenant"
    assert anyone.route.path == "route.routes[3]"
    platform = route(tree, {"scope": "platform", "x": "1"})
    assert [m.receiver for m in platform] == ["platform-pager", "no-tenant"]
    assert platform[0].group_labels == (("scope", "platform"), ("x", "1"))  # '...'


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({}, "needs one"),
        ({"receiver": "r", "matchers": ['a="b"']}, "root route matches everything"),
        ({"receiver": "r", "continue": True}, "root route matches everything"),
        ({"receiver": "r", "group_by": ["...", "a"]}, "cannot be combined"),
        ({"receiver": "r", "group_interval": "0s"}, "cannot be zero"),
        ({"receiver": "r", "group_wait": "soon"}, "invalid duration"),
        ({"receiver": "r", "mute_time_intervals": ["x"]}, "unsupported keys"),
        ({"receiver": "r", "routes": [{"matchers": ['a=~"(b+)+"']}]}, "exponential"),
        ({"receiver": "r", "routes": [{"matchers": ['a=~"(x)\\\\1"']}]}, "backreference"),
        ({"receiver": "r", "routes": [{"matchers": ["a"]}]}, "invalid matcher"),
        ({"receiver": "r", "routes": [{"match": {"a": 1}}]}, "map of label names"),
        ({"receiver": "r", "routes": [{"matchers": ['a=~"("']}]}, "invalid regex"),
    ],
)
def test_invalid_trees(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        parse_route(config)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('severity="critical"', Matcher("severity", "=", "critical")),
        ("severity = critical", Matcher("severity", "=", "critical")),
        ('env!="dev"', Matcher("env", "!=", "dev")),
        ('service=~"api|web"', Matcher("service", "=~", "api|web")),
        ('team!~"ops.*"', Matcher("team", "!~", "ops.*")),
        ('"service.name"="a\\"b"', Matcher("service.name", "=", 'a"b')),
        ("empty=", Matcher("empty", "=", "")),
    ],
)
def test_matcher_syntax(text: str, expected: Matcher) -> None:
    assert parse_matcher(text) == expected


def test_matcher_semantics() -> None:
    assert parse_matcher('a=""').matches({})  # a missing label is the empty string
    assert parse_matcher('a!~".+"').matches({})
    assert not parse_matcher('a=~"b"').matches({"a": "bb"})  # anchored
    assert parse_matcher('a=~"b|c"').matches({"a": "c"})
    assert parse_matcher('a=~"(a|b)*"').matches({"a": "abab"})  # a set: allowed, linear


# --- amlint as the oracle ---------------------------------------------------------------------

_VALUES = {
    "tenant": ["a", "b", "c", "d", ""],
    "severity": ["info", "high", "critical", "warning", ""],
    "service": ["api", "api-gw", "web", "mysql", "cassandra", ""],
    "scope": ["platform", ""],
    "env": ["dev", "prod", ""],
    "team": ["ops", "sre", "frontend", "opsx", ""],
    "alertname": ["Down", "Slow"],
}
LABELS = st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in _VALUES.items()})


def _oracle(config: dict[str, Any], labels: dict[str, str]) -> list[tuple[object, ...]]:
    found: list[tuple[object, ...]] = []
    for match in Router(config).match(labels):
        opts = match.opts
        group_by = None if opts.group_by == (AMLINT_GROUP_BY_ALL,) else opts.group_by
        timing = RouteTiming(
            parse_duration(opts.group_wait),
            parse_duration(opts.group_interval),
            parse_duration(opts.repeat_interval),
        )
        found.append((match.path[-1], opts.receiver, group_by, timing))
    return found


def _ours(config: dict[str, Any], labels: dict[str, str]) -> list[tuple[object, ...]]:
    return [
        (m.route.path, m.receiver, m.route.group_by, m.route.timing)
        for m in route(parse_route(config), labels)
    ]


@pytest.mark.parametrize("config", [DOCUMENTED, TENANTS], ids=["documented", "tenants"])
@settings(max_examples=300, deadline=None)
@given(labels=LABELS)
def test_agrees_with_amlint(config: dict[str, Any], labels: dict[str, str]) -> None:
    assert _ours(config, labels) == _oracle(config, labels)


_MATCHERS = st.sampled_from(
    [
        'tenant="a"', 'tenant!="a"', 'tenant=~"a|b"', 'tenant!~"[ab]"', 'tenant=""',
        'severity=~"high|critical"', 'severity="info"', 'service=~"api.*"', 'service!~"api"',
        'env!="dev"', 'team=~"ops|sre"', 'team!=""', 'scope="platform"', 'alertname=~".*"',
        '{tenant="a", severity="info"}', 'tenant=~"a|b",env!="dev",', 'team="a,b", env="x"',
    ]
)  # fmt: skip


def _subtree(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    node = st.fixed_dictionaries(
        {"matchers": st.lists(_MATCHERS, min_size=1, max_size=2)},
        optional={
            "receiver": st.sampled_from(["r1", "r2", "r3"]),
            "continue": st.booleans(),
            "group_by": st.sampled_from([["tenant"], ["..."], [], ["alertname", "team"]]),
            "group_wait": st.sampled_from(["0s", "10s", "1m"]),
            "repeat_interval": st.sampled_from(["1h", "12h"]),
        },
    )
    if depth == 0:
        return node
    return st.tuples(node, st.lists(_subtree(depth - 1), max_size=3)).map(
        lambda pair: {**pair[0], "routes": pair[1]} if pair[1] else pair[0]
    )


TREES = st.lists(_subtree(2), max_size=4).map(
    lambda children: {"receiver": "root", "group_by": ["alertname"], "routes": children}
)


@settings(max_examples=200, deadline=None)
@given(TREES, st.lists(LABELS, min_size=1, max_size=5))
def test_agrees_with_amlint_on_generated_trees(
    config: dict[str, Any], alerts: list[dict[str, str]]
) -> None:
    for labels in alerts:
        assert _ours(config, labels) == _oracle(config, labels)

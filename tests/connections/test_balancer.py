"""The balancers: turns, fewest in flight, and power of two choices on load x latency."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest

from tenantry.connections import (
    BalancerKind,
    LeastConnections,
    MemberStats,
    PowerOfTwoChoices,
    RoundRobin,
    make_balancer,
)
from tenantry.errors import ConfigError


@dataclass(eq=False)
class Node:
    name: str
    stats: MemberStats = field(default_factory=MemberStats)


def nodes(n: int) -> list[Node]:
    return [Node(f"n{i}") for i in range(n)]


def test_round_robin_takes_turns() -> None:
    members, balancer = nodes(3), RoundRobin()
    assert [balancer.pick(members).name for _ in range(6)] == ["n0", "n1", "n2"] * 2


def test_least_connections_takes_the_least_busy_and_rotates_ties() -> None:
    members, balancer = nodes(3), LeastConnections()
    members[0].stats.in_flight = 2
    members[1].stats.in_flight = 1
    members[2].stats.in_flight = 1
    picks = {balancer.pick(members).name for _ in range(4)}
    assert picks == {"n1", "n2"}
    members[2].stats.in_flight = 0
    assert all(balancer.pick(members).name == "n2" for _ in range(5))


def test_p2c_moves_load_away_from_a_slow_member() -> None:
    members, balancer = nodes(3), PowerOfTwoChoices(seed=7)
    for node, latency in zip(members, (0.010, 0.001, 0.001), strict=True):
        node.stats.started()
        node.stats.finished(latency)
    counts = Counter(balancer.pick(members).name for _ in range(3000))
    # n0 is picked only when both samples are... never: it loses every pair it is in.
    assert counts["n0"] == 0
    assert counts["n1"] > 1200
    assert counts["n2"] > 1200


def test_p2c_weighs_calls_in_flight() -> None:
    members, balancer = nodes(2), PowerOfTwoChoices(seed=1)
    for node in members:
        node.stats.started()
        node.stats.finished(0.002)
    members[0].stats.in_flight = 5  # cost 0.012 vs 0.002
    assert {balancer.pick(members).name for _ in range(50)} == {"n1"}


def test_a_failure_does_not_make_a_member_look_fast() -> None:
    stats = MemberStats(failure_penalty=0.25)
    stats.started()
    stats.finished(0.0001, failed=True)
    assert stats.ewma == pytest.approx(0.25)
    assert (stats.calls, stats.failures, stats.in_flight) == (1, 1, 0)
    stats.reset_latency()
    assert stats.cost() == 0.0


def test_ewma_follows_latency() -> None:
    stats = MemberStats(alpha=0.5)
    for latency in (0.010, 0.020, 0.020):
        stats.started()
        stats.finished(latency)
    assert stats.ewma == pytest.approx(0.0175)


def test_balancers_by_name() -> None:
    assert isinstance(make_balancer("round_robin"), RoundRobin)
    assert isinstance(make_balancer(BalancerKind.LEAST_CONNECTIONS), LeastConnections)
    assert make_balancer("power_of_two").kind is BalancerKind.POWER_OF_TWO
    with pytest.raises(ConfigError, match="round_robin"):
        make_balancer("random")

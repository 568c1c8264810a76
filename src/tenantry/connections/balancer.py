"""Load balancing across replicas or endpoints: round-robin, least-connections, P2C.

A balancer picks one of the members it is given; the caller has already left out members that
are unhealthy or whose breaker refuses calls. Each member carries :class:`MemberStats`: the calls
in flight and an exponentially weighted moving average (EWMA) of its latency.

- :class:`RoundRobin` takes members in turn.
- :class:`LeastConnections` takes the member with the fewest calls in flight (ties in turn).
- :class:`PowerOfTwoChoices` samples two members at random and takes the one with the lower
  cost ``latency EWMA x (in flight + 1)`` (Finagle's P2C with a latency EWMA): it stays close to
  least-loaded without every caller herding onto the same member, and it shifts load away from a
  member that became slow before the member fails outright.

A failed call counts as at least ``failure_penalty`` seconds in the EWMA, so a member that fails
fast does not look fast and attract traffic (the "black hole" of least-latency balancing).
"""

from __future__ import annotations

import itertools
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol, TypeVar

from tenantry.errors import ConfigError

__all__ = [
    "Balanced",
    "Balancer",
    "BalancerKind",
    "LeastConnections",
    "MemberStats",
    "PowerOfTwoChoices",
    "RoundRobin",
    "make_balancer",
]


class MemberStats:
    """Calls in flight, totals, and the latency EWMA of one member (seconds)."""

    __slots__ = ("alpha", "calls", "ewma", "failure_penalty", "failures", "in_flight", "seen")

    def __init__(self, *, alpha: float = 0.2, failure_penalty: float = 0.25) -> None:
        self.alpha = alpha
        self.failure_penalty = failure_penalty
        self.in_flight = 0
        self.calls = 0
        self.failures = 0
        self.ewma = 0.0
        self.seen = False

    def started(self) -> None:
        self.in_flight += 1

    def finished(self, duration: float, *, failed: bool = False) -> None:
        self.in_flight -= 1
        self.calls += 1
        if failed:
            self.failures += 1
            duration = max(duration, self.failure_penalty)
        if self.seen:
            self.ewma += self.alpha * (duration - self.ewma)
        else:
            self.ewma, self.seen = duration, True

    def reset_latency(self) -> None:
        """Forget the latency history (a member that recovered starts afresh)."""
        self.ewma, self.seen = 0.0, False

    def cost(self) -> float:
        return self.ewma * (self.in_flight + 1)


class Balanced(Protocol):
    """What a balancer needs of a member."""

    @property
    def stats(self) -> MemberStats: ...


M = TypeVar("M", bound=Balanced)


class BalancerKind(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_CONNECTIONS = "least_connections"
    POWER_OF_TWO = "power_of_two"


class Balancer(ABC):
    """Picks one member of a non-empty sequence."""

    kind: BalancerKind

    @abstractmethod
    def pick(self, members: Sequence[M]) -> M: ...


class RoundRobin(Balancer):
    kind = BalancerKind.ROUND_ROBIN

    def __init__(self) -> None:
        self._turn = itertools.count()

    def pick(self, members: Sequence[M]) -> M:
        return members[next(self._turn) % len(members)]


class LeastConnections(Balancer):
    kind = BalancerKind.LEAST_CONNECTIONS

    def __init__(self) -> None:
        self._turn = itertools.count()

    def pick(self, members: Sequence[M]) -> M:
        n = len(members)
        start = next(self._turn) % n  # rotate the starting point so ties take turns
        best = members[start]
        for i in range(1, n):
            member = members[(start + i) % n]
            if member.stats.in_flight < best.stats.in_flight:
                best = member
        return best


class PowerOfTwoChoices(Balancer):
    kind = BalancerKind.POWER_OF_TWO

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - load spreading, not security

    def pick(self, members: Sequence[M]) -> M:
        n = len(members)
        if n == 1:
            return members[0]
        i = self._rng.randrange(n)
        j = self._rng.randrange(n - 1)
        if j >= i:
            j += 1
        a, b = members[i], members[j]
        # An unmeasured member costs nothing: it gets traffic and so a measurement.
        return a if a.stats.cost() <= b.stats.cost() else b


def make_balancer(kind: BalancerKind | str, *, seed: int | None = None) -> Balancer:
    """A balancer by name: ``round_robin``, ``least_connections`` or ``power_of_two``."""
    try:
        chosen = BalancerKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in BalancerKind)
        raise ConfigError(f"unknown balancer {kind!r}: use one of {allowed}") from None
    if chosen is BalancerKind.ROUND_ROBIN:
        return RoundRobin()
    if chosen is BalancerKind.LEAST_CONNECTIONS:
        return LeastConnections()
    return PowerOfTwoChoices(seed)

"""Connections: pooled backends behind breakers, balancers, bulkheads, health checks, failover."""

from tenantry.connections.backends import BreakerConfig
from tenantry.connections.balancer import (
    Balancer,
    BalancerKind,
    LeastConnections,
    MemberStats,
    PowerOfTwoChoices,
    RoundRobin,
    make_balancer,
)
from tenantry.connections.breaker import BreakerState, CircuitBreaker
from tenantry.connections.bulkhead import Bulkhead
from tenantry.connections.http import HttpGroup
from tenantry.connections.manager import ConnectionManager
from tenantry.connections.pools import PoolGate, PoolLimits, PoolSizer
from tenantry.connections.retry import Retrier, RetryBudget, RetryPolicy
from tenantry.connections.schemas import ConnectionsHealth

__all__ = [
    "Balancer",
    "BalancerKind",
    "BreakerConfig",
    "BreakerState",
    "Bulkhead",
    "CircuitBreaker",
    "ConnectionManager",
    "ConnectionsHealth",
    "HttpGroup",
    "LeastConnections",
    "MemberStats",
    "PoolGate",
    "PoolLimits",
    "PoolSizer",
    "PowerOfTwoChoices",
    "Retrier",
    "RetryBudget",
    "RetryPolicy",
    "RoundRobin",
    "make_balancer",
]

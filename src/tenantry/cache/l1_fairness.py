"""Which tenant gives up space when the L1 cache is full: fair shares of the capacity.

A tenant's **fair share** is ``capacity * weight / W``, where ``W`` is the sum of the weights of
the tenants holding entries (a tenant that holds none is not counted, so its share goes to the
others), and never more than the tenant's budget. The shares of the tenants holding entries add
up to at most the capacity, so whenever the cache is over capacity at least one tenant is above
its share, and :meth:`TenantShares.payer` only ever names such a tenant:

- the writing tenant, if it is above its own share (it pays for its own growth: ``O(1)``);
- otherwise the tenant furthest above its share, in bytes (``O(tenants)``, rare: only when a
  tenant within its share writes into a full cache).

Hence a tenant within its share never loses an entry to another tenant's write, while space a
tenant does not use is lent to the others until it asks for it back.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from tenantry.cache.l1_policy import TenantSegment

__all__ = ["TenantShares"]

V = TypeVar("V")


class TenantShares(Generic[V]):
    """The tenants holding entries, their weights, and the payer rule."""

    __slots__ = ("_active", "_weight", "capacity", "unit")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._active: dict[str, TenantSegment[V]] = {}
        self._weight = 0.0  # of the tenants holding entries
        self.unit = 0.0  # bytes of share per unit of weight: capacity / _weight

    def tenants(self) -> list[str]:
        """The tenants holding entries, in the order they joined."""
        return list(self._active)

    def entries(self) -> int:
        return sum(len(segment.data) for segment in self._active.values())

    def join(self, segment: TenantSegment[V]) -> None:
        """``segment`` holds entries now (idempotent)."""
        if segment.tenant not in self._active:
            self._active[segment.tenant] = segment
            self._reweigh(segment.weight)

    def leave(self, segment: TenantSegment[V]) -> None:
        """``segment`` holds no entries any more (idempotent)."""
        if self._active.pop(segment.tenant, None) is not None:
            self._reweigh(-segment.weight)

    def reweigh(self, segment: TenantSegment[V], weight: float) -> None:
        if segment.tenant in self._active:
            self._reweigh(weight - segment.weight)
        segment.weight = weight

    def reweigh_all(self) -> None:
        """Recompute the share unit (after the capacity changed)."""
        self._reweigh(0.0)

    def _reweigh(self, change: float) -> None:
        self._weight = self._weight + change if self._active else 0.0  # no drift when empty
        self.unit = self.capacity / self._weight if self._active else 0.0

    def share(self, segment: TenantSegment[V]) -> float:
        """The tenant's fair share in bytes (as if it held entries, when it holds none)."""
        if segment.tenant in self._active:
            share = self.unit * segment.weight
        else:
            share = self.capacity * segment.weight / (self._weight + segment.weight)
        budget = segment.budget
        return share if budget is None or budget >= share else float(budget)

    def newcomer_share(self) -> float:
        """The share a tenant of weight 1 that holds no entries would get by joining."""
        return self.capacity / (self._weight + 1)

    def limit(self, segment: TenantSegment[V], growth: int = 0) -> float:
        """What the tenant's queues are sized for: its share, or more while it borrows space."""
        if segment.tenant in self._active:  # share(), inline: this runs on every write
            share = self.unit * segment.weight
            budget = segment.budget
            if budget is not None and budget < share:
                share = budget
        else:
            share = self.share(segment)
        used = segment.bytes + growth
        return share if share > used else used

    def payer(self, writer: TenantSegment[V]) -> TenantSegment[V]:
        """The tenant that evicts next while the cache is over capacity after ``writer`` wrote."""
        if writer.data and writer.bytes > self.share(writer):
            return writer
        unit = self.unit
        best, best_excess = None, 0.0
        for segment in self._active.values():
            share = unit * segment.weight
            if segment.budget is not None and segment.budget < share:
                share = segment.budget
            excess = segment.bytes - share
            if best is None or excess > best_excess:
                best, best_excess = segment, excess
        if best is None:
            raise RuntimeError("over capacity with no tenant holding entries")
        return best

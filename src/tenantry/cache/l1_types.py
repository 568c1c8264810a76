"""What the L1 cache hands out: its entries, the miss sentinel and per-tenant counters."""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from tenantry.cache.sketch import Cells

__all__ = ["MISSING", "Entry", "Missing", "TenantStats"]

V = TypeVar("V")

_NO_CELLS: Cells = (0, 0, 0, 0)


class Entry(Generic[V]):
    """A cached value and what the cache knows about it. Read-only for callers.

    ``size`` is the caller's byte count; ``expires_at`` is on the cache's (monotonic) clock;
    ``meta`` is the caller's own (the cache manager keeps load times and tags there). Writing a
    key again makes a new entry, so an entry held by a caller never changes under it.
    """

    __slots__ = (
        "_cells",
        "_queue",
        "_reads",
        "_timer",
        "expires_at",
        "key",
        "meta",
        "size",
        "tenant",
        "value",
    )

    def __init__(  # noqa: PLR0917 - made on every write: positional arguments are faster
        self,
        tenant: str,
        key: str,
        value: V,
        size: int,
        expires_at: float | None = None,
        meta: object = None,
    ) -> None:
        self.tenant = tenant
        self.key = key
        self.value = value
        self.size = size
        self.expires_at = expires_at
        self.meta = meta
        self._queue: OrderedDict[str, Entry[V]] | None = None  # None: not (or no longer) cached
        self._cells = _NO_CELLS
        self._reads = 0  # reads not yet in the sketch; > 0: read since the policy last looked
        self._timer: list[Entry[V]] | None = None  # the expiry heap's holder covering the entry

    @property
    def cached(self) -> bool:
        """Whether the entry is still in the cache (not replaced, deleted, evicted or expired)."""
        return self._queue is not None

    def __repr__(self) -> str:
        return (
            f"Entry(tenant={self.tenant!r}, key={self.key!r}, size={self.size}, "
            f"expires_at={self.expires_at!r}, cached={self.cached})"
        )


class Missing(enum.Enum):
    """The type of :data:`MISSING`."""

    MISSING = "MISSING"


#: What :meth:`TenantL1.get` returns for a miss (``None`` can be a cached value).
MISSING: Final = Missing.MISSING


@dataclass(frozen=True, slots=True)
class TenantStats:
    """One tenant's counters since it was first seen (``clear_tenant`` keeps them)."""

    hits: int
    misses: int
    evictions: int  # entries removed to make room (for the capacity or the budget)
    rejections: int  # writes refused: lost the admission duel, or larger than capacity/budget
    expirations: int  # entries removed because they expired
    bytes: int
    entries: int
    share: float  # the tenant's fair share of the capacity now, in bytes
    budget: int | None

    @property
    def hit_ratio(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

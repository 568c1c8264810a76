"""What a key change did, handed to whoever records it inside the change's transaction.

Every key change is audited (DESIGN invariant 7) by the :class:`~tenantry.security.SecurityManager`,
which sits above this domain: it passes ``record=`` to the :class:`~tenantry.keys.Keyring`
method, and the keyring awaits it with a :class:`KeyChange` inside the transaction that makes
the change, after the change and before the commit. The entry written there commits with the
change; an exception (the entry cannot be written) rolls the change back.

Where that transaction is:

- a tenant's key change (``rotate``, ``rewrap``, ``level``, ``destroy``, and each tenant's
  ``rewrap_root`` during a root rotation): the tenant's key transaction, which holds its key lock;
- a change of the root key file (``rotate_root`` outcome ``started`` before a new version is
  added, ``retire_root`` before old versions are retired): a transaction of the ``platform``
  tenant, open while the file changes, so the file changes only once the entry is written;
- the end of a root rotation (``rotate_root`` outcome ``success``): a platform transaction of
  its own, after the last tenant's re-wrap.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KeyChange", "RecordKeyChange"]


@dataclass(frozen=True, slots=True)
class KeyChange:
    """One key change: ``action`` (``rotate``, ``rewrap``, ``level``, ``destroy``,
    ``rewrap_root``, ``rotate_root``, ``retire_root``), the tenant whose keys changed (None: the
    root key), what changed (JSON-able, no floats), and the outcome."""

    action: str
    tenant_id: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    outcome: str = "success"


#: Awaited inside the transaction of a key change, with what it did; raising rolls it back.
RecordKeyChange = Callable[[KeyChange], Awaitable[None]]

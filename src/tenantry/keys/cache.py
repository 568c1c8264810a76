"""The Keyring's per-process cache of unwrapped data keys, and how it stays current.

``entries`` maps a tenant to its ready ciphers; :meth:`Keyring.seal` / :meth:`Keyring.open` read
it with one dict lookup and nothing else (no clock, no lock). Everything that keeps it current
happens off that path:

- a key signal (``signal.py``) replaces a destroyed tenant's entry at once, and has a rotated
  tenant reloaded;
- an entry older than ``max_age`` seconds is reloaded by the next async call for the tenant
  (``load``, ``encrypt``, ``decrypt``) and by the listener's sweep, which bounds how stale a
  process can be when it missed a signal;
- a load that raced with a signal for its tenant is not trusted: each tenant being loaded or
  cached has an epoch, bumped by every signal, and a load stores its result only if the epoch
  it started with is unchanged (else it reads again).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["CachedKeys", "KeyCache"]


@dataclass(slots=True)
class CachedKeys:
    """One tenant's unwrapped data keys (ciphers by version), or the fact they were destroyed."""

    current: int = 0
    ciphers: dict[int, AESGCM] = field(default_factory=dict)
    destroyed: bool = False
    loaded_at: float = field(default_factory=time.monotonic)


class KeyCache:
    def __init__(self, max_age: float | None) -> None:
        if max_age is not None and max_age <= 0:
            raise ValueError("max_age must be positive (or None: no limit)")
        self.max_age = max_age
        self.entries: dict[str, CachedKeys] = {}
        self._epochs: dict[str, int] = {}
        self._loading: dict[str, int] = {}

    def fresh(self, tenant_id: str) -> CachedKeys | None:
        """The tenant's entry unless it is missing or older than ``max_age``."""
        entry = self.entries.get(tenant_id)
        if entry is None or self._expired(entry, time.monotonic()):
            return None
        return entry

    def _expired(self, entry: CachedKeys, now: float) -> bool:
        return self.max_age is not None and now - entry.loaded_at > self.max_age

    def stale(self) -> list[str]:
        """Tenants whose entries are older than ``max_age``."""
        now = time.monotonic()
        return [t for t, entry in self.entries.items() if self._expired(entry, now)]

    # -- loads racing with signals -------------------------------------------------------------
    def begin_load(self, tenant_id: str) -> int:
        """Note a load of the tenant; returns the epoch to hand to :meth:`finish_load`."""
        self._loading[tenant_id] = self._loading.get(tenant_id, 0) + 1
        return self._epochs.setdefault(tenant_id, 0)

    def finish_load(self, tenant_id: str, epoch: int, keys: CachedKeys | None) -> bool:
        """Store ``keys`` unless a signal came since ``epoch`` (False: read again)."""
        current = self._epochs.get(tenant_id, 0) == epoch
        if keys is not None and current:
            self.entries[tenant_id] = keys
        left = self._loading.get(tenant_id, 1) - 1
        if left:
            self._loading[tenant_id] = left
        else:
            self._loading.pop(tenant_id, None)
            if tenant_id not in self.entries:
                self._epochs.pop(tenant_id, None)
        return current

    def _bump(self, tenant_id: str) -> None:
        if tenant_id in self._epochs:
            self._epochs[tenant_id] += 1

    # -- changes -------------------------------------------------------------------------------
    def store(self, tenant_id: str, keys: CachedKeys) -> None:
        """Store keys this process just changed itself (under the tenant's lock)."""
        self._bump(tenant_id)
        self._epochs.setdefault(tenant_id, 0)
        self.entries[tenant_id] = keys

    def destroyed(self, tenant_id: str) -> None:
        """The tenant's keys are gone: an entry that says so replaces a cached one."""
        self._bump(tenant_id)
        if tenant_id in self.entries:
            self.entries[tenant_id] = CachedKeys(destroyed=True)

    def changed(self, tenant_id: str) -> None:
        """The tenant's keys changed elsewhere: loads in flight must read again."""
        self._bump(tenant_id)

    def forget(self, tenant_id: str) -> None:
        self._bump(tenant_id)
        self.entries.pop(tenant_id, None)
        if tenant_id not in self._loading:
            self._epochs.pop(tenant_id, None)

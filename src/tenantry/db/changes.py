"""Where managers record their state changes (DESIGN invariant 7), as seen from below the audit log.

Every manager writes an audit entry in the transaction of each change it makes. The tenant
registry and its settings sit below the audit log in the layers (the audit log's keys are kept
per tenant), so the managers know the log only as this small protocol, :class:`ChangeLog`; the
audit domain implements it (:class:`tenantry.audit.AuditTrail`), and whoever assembles tenantry
hands it over: the app gives each manager its trail, and the package registers
:func:`tenantry.audit.trail_for` here (:func:`provide_change_logs`) for managers made without one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from tenantry.db.default import UsesDatabase
from tenantry.db.engine import Database
from tenantry.errors import ConfigError

__all__ = ["ChangeLog", "RecordsChanges", "change_log_for", "provide_change_logs"]


class ChangeLog(Protocol):
    """An audit log as the managers use it: ready a tenant, then record changes in its scope."""

    async def prepare(self, tenant_id: str) -> None:
        """Do the I/O that :meth:`record` must not do inside the change's transaction."""

    async def record(
        self,
        tenant_id: str,
        action: str,
        resource: str = "",
        *,
        actor: str | None = None,
        outcome: str = "success",
        frameworks: Sequence[str] = (),
        detail: dict[str, Any] | None = None,
    ) -> str:
        """Record a change of ``tenant_id`` in the open transaction, if there is one."""


_resolver: Callable[[Database], ChangeLog] | None = None


def provide_change_logs(resolver: Callable[[Database], ChangeLog]) -> None:
    """Set how a database's change log is found for managers made without one."""
    global _resolver  # noqa: PLW0603 - one resolver per process, set by the package's assembly
    _resolver = resolver


def change_log_for(database: Database) -> ChangeLog:
    """The change log of ``database``, from the resolver :func:`provide_change_logs` set."""
    if _resolver is None:
        raise ConfigError("no audit log is assembled: import tenantry before making managers")
    return _resolver(database)


class RecordsChanges(UsesDatabase):
    """For managers: ``self._audit`` if one was given, else :func:`change_log_for` the database.

    Subclasses set ``self._database`` and ``self._audit`` (a :class:`ChangeLog` or None).
    """

    _audit: ChangeLog | None

    async def _trail(self, tenant_id: str) -> ChangeLog:
        """The change log, ready to record ``tenant_id``'s changes.

        Call it *before* opening the change's transaction: readying a tenant loads its keys in
        a short transaction of their own, so recording inside the change's does no I/O.
        """
        if self._audit is None:
            self._audit = change_log_for(await self._db())
        await self._audit.prepare(tenant_id)
        return self._audit

"""Base repositories: SQL on a connection whose transaction the caller (the boundary) owns.

A :class:`TenantRepository` is only ever handed a connection from
:meth:`Database.tenant_transaction`, so PostgreSQL already limits every statement to the
current tenant; the repository writes ``tenant_id`` on inserts from the same context, and never
filters by tenant by hand.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.context import get_tenant

__all__ = ["Repository", "TenantRepository"]


class Repository:
    """SQL for the global tables (the tenant registry)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn


class TenantRepository(Repository):
    """SQL for tenant-owned tables, inside a tenant transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self.tenant_id = get_tenant()

"""The platform's alert state, reset around each test that sets it: the platform is one per
database, shared by every test of a worker, and its routing would copy their alerts."""

from __future__ import annotations

from sqlalchemy import text

from tenantry.context import PLATFORM_TENANT, tenant_scope
from tenantry.db.engine import Database

_TABLES = (
    "alert_attempts",
    "alert_outbox",
    "alert_groups",
    "alert_silences",
    "alert_routing",
    "alert_receivers",
    "alert_states",
    "alert_rules",
)


async def reset_platform(db: Database) -> None:
    """Delete the platform's alert rows (in its scope: row-level security applies)."""
    with tenant_scope(PLATFORM_TENANT):
        async with db.tenant_transaction() as conn:
            for table in _TABLES:
                await conn.execute(text(f"DELETE FROM tenantry.{table}"))

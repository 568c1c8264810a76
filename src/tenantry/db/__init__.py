"""Database plumbing: engines, the embedded PostgreSQL, roles, RLS helpers and migrations."""

from tenantry.db.engine import Database
from tenantry.db.metadata import SCHEMA, metadata
from tenantry.db.rls import tenant_table

__all__ = ["SCHEMA", "Database", "metadata", "tenant_table"]

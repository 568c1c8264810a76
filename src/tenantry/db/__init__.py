"""Database plumbing: engines, the embedded PostgreSQL, roles, RLS helpers and migrations."""

from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.default import UsesDatabase, default_database
from tenantry.db.engine import Database, TransactionRouter
from tenantry.db.metadata import SCHEMA, metadata
from tenantry.db.repository import TenantRepository
from tenantry.db.rls import rls_statements, tenant_table, tenant_tables

__all__ = [
    "SCHEMA",
    "ChangeLog",
    "Database",
    "RecordsChanges",
    "TenantRepository",
    "TransactionRouter",
    "UsesDatabase",
    "default_database",
    "metadata",
    "rls_statements",
    "tenant_table",
    "tenant_tables",
]

"""Metadata search reads per-tenant indexes only: the indexes shared by all tenants are dropped.

A shared index makes a search's time depend on other tenants' rows (how many of all tenants'
records hold the query's words; how many other tenants' vectors an HNSW scan walks past), a
timing channel between tenants; and under row-level security the full-text and ``fields``
indexes were not used anyway (their operators are not leakproof). Tenants with many records get
partial indexes of their own (:mod:`tenantry.metadata.indexes`, kept by the service); the others
are searched by reading their own rows through the primary key.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
SHARED = (
    "ix_metadata_records_search_tsv",
    "ix_metadata_records_fields",
    "ix_metadata_records_embedding",
)


def upgrade() -> None:
    for name in SHARED:
        op.execute(f'DROP INDEX IF EXISTS "{SCHEMA}"."{name}"')


def downgrade() -> None:
    records = f'"{SCHEMA}".metadata_records'
    op.execute(f"CREATE INDEX ix_metadata_records_search_tsv ON {records} USING gin (search_tsv)")
    op.execute(f"CREATE INDEX ix_metadata_records_fields ON {records} USING gin (fields)")
    vector = op.get_bind().exec_driver_sql(
        "select 1 from pg_attribute where attrelid = 'tenantry.metadata_records'::regclass "
        "and attname = 'embedding' and format_type(atttypid, atttypmod) like 'vector%'"
    )
    if vector.scalar() is not None:
        op.execute(
            f"CREATE INDEX ix_metadata_records_embedding ON {records} "
            "USING hnsw (embedding vector_cosine_ops)"
        )

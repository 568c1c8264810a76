"""Metadata vectors of two encoders side by side: ``embedding`` becomes 896 wide.

multilingual-e5-small (384) and the Universal Sentence Encoder multilingual v3 (512), one after
the other (``tenantry.metadata.encoder.Ensemble``); search ranks by each part on its own. The old
384-wide vectors are dropped and every record is due again: the embedder re-embeds them in the
background (until it has, a record is found by text only). The per-tenant vector indexes go with
the old column; the keeper builds the new ones.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
RECORDS = f'"{SCHEMA}".metadata_records'


def _pgvector() -> bool:
    found = op.get_bind().exec_driver_sql(
        "select 1 from pg_attribute where attrelid = 'tenantry.metadata_records'::regclass "
        "and attname = 'embedding' and format_type(atttypid, atttypmod) like 'vector%'"
    )
    return found.scalar() is not None


def _replace(dimension: int) -> None:
    pgvector = _pgvector()
    op.execute(f"ALTER TABLE {RECORDS} DROP COLUMN embedding")
    if pgvector:
        op.execute(f"ALTER TABLE {RECORDS} ADD COLUMN embedding vector({dimension})")
    else:
        op.execute(f"ALTER TABLE {RECORDS} ADD COLUMN embedding real[]")
        op.execute(
            f"ALTER TABLE {RECORDS} ADD CONSTRAINT ck_metadata_records_embedding "
            f"CHECK (embedding is null or cardinality(embedding) = {dimension})"
        )
    # Migrations run as the owner, which the policy binds too (FORCE): lifted for this statement
    # only, inside the migration's transaction, so that every tenant's records are due again.
    op.execute(f"ALTER TABLE {RECORDS} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"UPDATE {RECORDS} SET embedded_version = NULL, embedding_model = NULL")
    op.execute(f"ALTER TABLE {RECORDS} FORCE ROW LEVEL SECURITY")


def upgrade() -> None:
    _replace(896)


def downgrade() -> None:
    _replace(384)

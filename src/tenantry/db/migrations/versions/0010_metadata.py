"""The metadata domain: records, their immutable versions, the schema registry, search columns.

The embedding column is ``vector(384)`` with an HNSW index (cosine) where the server has
pgvector (the bootstrap creates the extension when it can), and ``real[]`` otherwise: search
is then exact, computed by the server over the tenant's rows.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REGCONFIG, TSVECTOR

from tenantry.db.rls import create_tenant_table

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
NOW = sa.func.now()
DIMENSION = 384
TYPES = "'schema', 'business', 'technical'"
MODES = (
    "'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', "
    "'FULL_TRANSITIVE', 'NONE'"
)


def upgrade() -> None:
    create_tenant_table(
        "metadata_schema_subjects",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("compatibility", sa.Text, nullable=False, server_default="BACKWARD"),
        sa.Column("latest", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id", "name", name=op.f("pk_metadata_schema_subjects")),
        sa.CheckConstraint(
            f"compatibility in ({MODES})", name=op.f("ck_metadata_schema_subjects_compatibility")
        ),
    )
    create_tenant_table(
        "metadata_schemas",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("schema", JSONB, nullable=False),
        sa.Column("compatibility", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("created_by", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "name", "version", name=op.f("pk_metadata_schemas")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "name"],
            [
                f"{SCHEMA}.metadata_schema_subjects.tenant_id",
                f"{SCHEMA}.metadata_schema_subjects.name",
            ],
            ondelete="CASCADE",
            name=op.f("fk_metadata_schemas_tenant_id_metadata_schema_subjects"),
        ),
        sa.CheckConstraint("version > 0", name=op.f("ck_metadata_schemas_version")),
        sa.CheckConstraint(
            f"compatibility in ({MODES})", name=op.f("ck_metadata_schemas_compatibility")
        ),
    )
    create_tenant_table(
        "metadata_records",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("metadata_type", sa.Text, nullable=False),
        sa.Column("schema_name", sa.Text, nullable=True),
        sa.Column("schema_version", sa.Integer, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("language", sa.Text, nullable=True),
        sa.Column(
            "text_config",
            REGCONFIG,
            nullable=False,
            server_default=sa.text("'simple'::regconfig"),
        ),
        sa.Column("fields", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("search_text", sa.Text, nullable=False, server_default=""),
        sa.Column(
            "search_tsv",
            TSVECTOR,
            sa.Computed(
                "to_tsvector(text_config, search_text) || to_tsvector('simple'::regconfig, "
                "search_text)",
                persisted=True,
            ),
        ),
        sa.Column("sensitive_fields", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("embedding_model", sa.Text, nullable=True),
        sa.Column("embedded_version", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("created_by", sa.Text, nullable=True),
        sa.Column("updated_by", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_metadata_records")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "schema_name", "schema_version"],
            [
                f"{SCHEMA}.metadata_schemas.tenant_id",
                f"{SCHEMA}.metadata_schemas.name",
                f"{SCHEMA}.metadata_schemas.version",
            ],
            ondelete="RESTRICT",
            name=op.f("fk_metadata_records_tenant_id_metadata_schemas"),
        ),
        sa.CheckConstraint(
            f"metadata_type in ({TYPES})", name=op.f("ck_metadata_records_metadata_type")
        ),
        sa.CheckConstraint("version > 0", name=op.f("ck_metadata_records_version")),
        sa.CheckConstraint(
            "(schema_name is null) = (schema_version is null)",
            name=op.f("ck_metadata_records_schema"),
        ),
    )
    op.create_index(
        "ix_metadata_records_created",
        "metadata_records",
        ["tenant_id", "created_at", "id"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_metadata_records_schema",
        "metadata_records",
        ["tenant_id", "schema_name"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_metadata_records_fields",
        "metadata_records",
        ["fields"],
        schema=SCHEMA,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_metadata_records_search_tsv",
        "metadata_records",
        ["search_tsv"],
        schema=SCHEMA,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_metadata_records_embedding_due",
        "metadata_records",
        ["tenant_id", "updated_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("embedded_version is distinct from version"),
    )
    records = f'"{SCHEMA}".metadata_records'
    if _has_pgvector():
        op.execute(f"ALTER TABLE {records} ADD COLUMN embedding vector({DIMENSION})")
        op.execute(
            f"CREATE INDEX ix_metadata_records_embedding ON {records} "
            "USING hnsw (embedding vector_cosine_ops)"
        )
    else:
        op.execute(f"ALTER TABLE {records} ADD COLUMN embedding real[]")
        op.execute(
            f"ALTER TABLE {records} ADD CONSTRAINT ck_metadata_records_embedding "
            f"CHECK (embedding is null or cardinality(embedding) = {DIMENSION})"
        )
    create_tenant_table(
        "metadata_versions",
        sa.Column("record_id", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("metadata_type", sa.Text, nullable=False),
        sa.Column("schema_name", sa.Text, nullable=True),
        sa.Column("schema_version", sa.Integer, nullable=True),
        sa.Column("encoding", sa.SmallInteger, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("sealed", sa.LargeBinary, nullable=True),
        sa.Column("change", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("created_by", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint(
            "tenant_id", "record_id", "version", name=op.f("pk_metadata_versions")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "record_id"],
            [f"{SCHEMA}.metadata_records.tenant_id", f"{SCHEMA}.metadata_records.id"],
            ondelete="CASCADE",
            name=op.f("fk_metadata_versions_tenant_id_metadata_records"),
        ),
        sa.CheckConstraint("version > 0", name=op.f("ck_metadata_versions_version")),
        sa.CheckConstraint(
            "change in ('create', 'update', 'rollback', 'upgrade')",
            name=op.f("ck_metadata_versions_change"),
        ),
        sa.CheckConstraint(
            f"metadata_type in ({TYPES})", name=op.f("ck_metadata_versions_metadata_type")
        ),
    )
    # A version is immutable: no UPDATE, by anyone (a delete goes with its record).
    op.execute(
        f"""
        CREATE FUNCTION "{SCHEMA}".metadata_versions_immutable() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
        AS $$
        BEGIN
            RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    # So is a registered schema version (a record validated against it must stay valid).
    for table in ("metadata_versions", "metadata_schemas"):
        op.execute(
            f'CREATE TRIGGER {table}_immutable BEFORE UPDATE ON "{SCHEMA}".{table} '
            f'FOR EACH ROW EXECUTE FUNCTION "{SCHEMA}".metadata_versions_immutable()'
        )


def _has_pgvector() -> bool:
    found = op.get_bind().scalar(sa.text("select 1 from pg_extension where extname = 'vector'"))
    return found is not None


def downgrade() -> None:
    op.drop_table("metadata_versions", schema=SCHEMA)
    op.drop_table("metadata_records", schema=SCHEMA)
    op.drop_table("metadata_schemas", schema=SCHEMA)
    op.execute(f'DROP FUNCTION "{SCHEMA}".metadata_versions_immutable()')
    op.drop_table("metadata_schema_subjects", schema=SCHEMA)

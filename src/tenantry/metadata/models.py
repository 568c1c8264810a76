"""Tables of the metadata domain (created by migration 0010).

A record's current state is a row of ``metadata_records``; its content lives in immutable
``metadata_versions`` (a trigger refuses any UPDATE of a version), so the history, a read at a
version and a rollback all read one table. ``fields`` is the filterable projection of a record's
content (its top-level scalar fields that are not sensitive); ``search_text`` is what full-text
search and the embedding see (never a sensitive field). ``embedding``'s type depends on the
server (``vector(896)`` with pgvector, ``real[]`` without, chosen by the migration), so it is
declared untyped: a write may clear it, and only the statements in ``search.py`` read or set it.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REGCONFIG, TSVECTOR
from sqlalchemy.types import NullType

from tenantry.db.rls import tenant_table

__all__ = [
    "COMPATIBILITY_MODES",
    "EMBEDDING_DIMENSION",
    "EMBEDDING_PARTS",
    "METADATA_TYPES",
    "metadata_records",
    "metadata_schema_subjects",
    "metadata_schemas",
    "metadata_versions",
]

METADATA_TYPES = ("schema", "business", "technical")
COMPATIBILITY_MODES = (
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
)
#: The width of the stored vectors; the migration (0012) fixes it.
EMBEDDING_DIMENSION = 896
#: Where each encoder's vector sits in a stored row, ``row[start:stop]``: multilingual-e5-small,
#: then the Universal Sentence Encoder (``tenantry.metadata.encoder.default_encoder``). Search
#: ranks by each part; a tenant's vector indexes are one per part.
EMBEDDING_PARTS: tuple[tuple[int, int], ...] = ((0, 384), (384, 896))

_TYPES = ", ".join(f"'{t}'" for t in METADATA_TYPES)
_MODES = ", ".join(f"'{m}'" for m in COMPATIBILITY_MODES)

metadata_records = tenant_table(
    "metadata_records",
    Column("id", Text, primary_key=True),
    Column("metadata_type", Text, nullable=False),
    Column("schema_name", Text, nullable=True),
    Column("schema_version", Integer, nullable=True),
    Column("version", Integer, nullable=False),
    Column("language", Text, nullable=True),
    Column("text_config", REGCONFIG, nullable=False, server_default=text("'simple'::regconfig")),
    Column("fields", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("search_text", Text, nullable=False, server_default=""),
    Column(
        "search_tsv",
        TSVECTOR,
        Computed(
            "to_tsvector(text_config, search_text) || to_tsvector('simple'::regconfig, "
            "search_text)",
            persisted=True,
        ),
    ),
    Column("sensitive_fields", ARRAY(Text), nullable=False, server_default="{}"),
    Column("embedding", NullType(), nullable=True),
    Column("embedding_model", Text, nullable=True),
    Column("embedded_version", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", Text, nullable=True),
    Column("updated_by", Text, nullable=True),
    CheckConstraint(f"metadata_type in ({_TYPES})", name="metadata_type"),
    CheckConstraint("version > 0", name="version"),
    CheckConstraint("(schema_name is null) = (schema_version is null)", name="schema"),
    ForeignKeyConstraint(
        ["tenant_id", "schema_name", "schema_version"],
        [
            "metadata_schemas.tenant_id",
            "metadata_schemas.name",
            "metadata_schemas.version",
        ],
        ondelete="RESTRICT",
    ),
    Index("ix_metadata_records_created", "tenant_id", "created_at", "id"),
    Index("ix_metadata_records_schema", "tenant_id", "schema_name"),
    # No index shared by all tenants on fields, search_tsv or embedding (migration 0011): large
    # tenants get partial indexes of their own (tenantry.metadata.indexes).
    Index(
        "ix_metadata_records_embedding_due",
        "tenant_id",
        "updated_at",
        postgresql_where=text("embedded_version is distinct from version"),
    ),
    info={"sample_row": {"metadata_type": "business", "version": 1}},
)

metadata_versions = tenant_table(
    "metadata_versions",
    Column("record_id", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("metadata_type", Text, nullable=False),
    Column("schema_name", Text, nullable=True),
    Column("schema_version", Integer, nullable=True),
    Column("encoding", SmallInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("sealed", LargeBinary, nullable=True),
    Column("change", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", Text, nullable=True),
    ForeignKeyConstraint(
        ["tenant_id", "record_id"],
        ["metadata_records.tenant_id", "metadata_records.id"],
        ondelete="CASCADE",
    ),
    CheckConstraint("version > 0", name="version"),
    CheckConstraint("change in ('create', 'update', 'rollback', 'upgrade')", name="change"),
    CheckConstraint(f"metadata_type in ({_TYPES})", name="metadata_type"),
    info={"sample_row": {"metadata_type": "business", "change": "create", "encoding": 0}},
)

metadata_schema_subjects = tenant_table(
    "metadata_schema_subjects",
    Column("name", Text, primary_key=True),
    Column("compatibility", Text, nullable=False, server_default="BACKWARD"),
    Column("latest", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(f"compatibility in ({_MODES})", name="compatibility"),
    info={"sample_row": {"compatibility": "BACKWARD"}},
)

metadata_schemas = tenant_table(
    "metadata_schemas",
    Column("name", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("schema", JSONB, nullable=False),
    Column("compatibility", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", Text, nullable=True),
    ForeignKeyConstraint(
        ["tenant_id", "name"],
        ["metadata_schema_subjects.tenant_id", "metadata_schema_subjects.name"],
        ondelete="CASCADE",
    ),
    CheckConstraint("version > 0", name="version"),
    CheckConstraint(f"compatibility in ({_MODES})", name="compatibility"),
    info={"sample_row": {"compatibility": "BACKWARD"}},
)

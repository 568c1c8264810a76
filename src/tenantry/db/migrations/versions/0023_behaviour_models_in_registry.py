"""The session behaviour models move into each tenant's AI registry: every ``behaviour_models``
row becomes version 1 (and ``champion``) of the tenant's model ``session_behaviour``, whose file
is the row's header and arrays in one piece (``tenantry-behaviour``: the header's length in 4
big-endian bytes, the header as JSON, the zlib block) with its SHA-256; then the table is
dropped. A tenant that already has a model of that name keeps it and loses the old row (its
learner trains a new one). Downgrade copies each champion back and removes the registry's
``session_behaviour`` models.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.rls import create_tenant_table

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
NOW = sa.func.now()
NAME = "session_behaviour"
REGISTRY = ("ai_models", "ai_model_versions", "ai_model_aliases")

_FILE = "int4send(octet_length(h)) || h || b.arrays"
_COPY_MODELS = f"""
INSERT INTO {SCHEMA}.ai_models (tenant_id, name, model_type, latest_version, created_at,
                                updated_at)
SELECT tenant_id, '{NAME}', '{NAME}', 1, trained_at, trained_at FROM {SCHEMA}.behaviour_models
ON CONFLICT DO NOTHING
"""
_COPY_VERSIONS = f"""
INSERT INTO {SCHEMA}.ai_model_versions (tenant_id, model_name, version, file_format, file, sha256,
                                        metrics, parameters, lineage, trained_by, created_at)
SELECT b.tenant_id, '{NAME}', 1, 'tenantry-behaviour', {_FILE}, sha256({_FILE}),
       jsonb_build_object('samples', b.samples, 'accuracy', NULL),
       jsonb_build_object('trees', b.meta -> 'trees'),
       jsonb_build_object(
           'source', 'behaviour_models (migration 0023)', 'rows', '', 'start', NULL,
           'end', b.trained_at, 'row_count', b.samples,
           'feature_count', jsonb_array_length(b.meta -> 'features'),
           'feature_names', b.meta -> 'features', 'through', b.through, 'sessions', b.samples,
           'previous_version', b.version),
       'migration 0023', b.trained_at
FROM {SCHEMA}.behaviour_models b
CROSS JOIN LATERAL (SELECT convert_to(b.meta::text, 'UTF8') AS h) header
JOIN {SCHEMA}.ai_models m
  ON m.tenant_id = b.tenant_id AND m.name = '{NAME}' AND m.model_type = '{NAME}'
     AND m.latest_version = 1
WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.ai_model_versions v
                  WHERE v.tenant_id = b.tenant_id AND v.model_name = '{NAME}')
"""
_CHAMPIONS = f"""
INSERT INTO {SCHEMA}.ai_model_aliases (tenant_id, model_name, alias, version)
SELECT tenant_id, '{NAME}', 'champion', 1 FROM {SCHEMA}.ai_model_versions
WHERE model_name = '{NAME}' AND file_format = 'tenantry-behaviour' AND version = 1
      AND trained_by = 'migration 0023'
ON CONFLICT DO NOTHING
"""
_LENGTH = "(get_byte(v.file, 0) << 24 | get_byte(v.file, 1) << 16 | get_byte(v.file, 2) << 8 | "
_LENGTH += "get_byte(v.file, 3))"
_COPY_BACK = f"""
INSERT INTO {SCHEMA}.behaviour_models (tenant_id, version, format, meta, arrays, through, samples,
                                       trained_at)
SELECT v.tenant_id, a.version, CAST(h.meta ->> 'format' AS smallint), h.meta,
       substring(v.file FROM 5 + {_LENGTH}),
       coalesce(CAST(v.lineage ->> 'through' AS bigint), 0),
       coalesce(CAST(v.lineage ->> 'row_count' AS integer), 0), v.created_at
FROM {SCHEMA}.ai_model_aliases a
JOIN {SCHEMA}.ai_model_versions v
  ON v.tenant_id = a.tenant_id AND v.model_name = a.model_name AND v.version = a.version
CROSS JOIN LATERAL (
    SELECT CAST(convert_from(substring(v.file FROM 5 FOR {_LENGTH}), 'UTF8') AS jsonb) AS meta
) h
WHERE a.model_name = '{NAME}' AND a.alias = 'champion' AND v.file_format = 'tenantry-behaviour'
"""


def _unforced(*tables: str) -> None:
    """Migrations run as the owner, which the policies bind too (FORCE): lifted for these
    statements only, inside the migration's transaction, so that every tenant's rows move."""
    for table in tables:
        op.execute(f"ALTER TABLE {SCHEMA}.{table} NO FORCE ROW LEVEL SECURITY")


def _forced(*tables: str) -> None:
    for table in tables:
        op.execute(f"ALTER TABLE {SCHEMA}.{table} FORCE ROW LEVEL SECURITY")


def upgrade() -> None:
    _unforced("behaviour_models", *REGISTRY)
    for statement in (_COPY_MODELS, _COPY_VERSIONS, _CHAMPIONS):
        op.execute(statement)
    _forced(*REGISTRY)
    op.drop_table("behaviour_models", schema=SCHEMA)


def downgrade() -> None:
    create_tenant_table(
        "behaviour_models",
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("format", sa.SmallInteger, nullable=False),
        sa.Column("meta", JSONB, nullable=False),
        sa.Column("arrays", sa.LargeBinary, nullable=False),
        sa.Column("through", sa.BigInteger, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_behaviour_models")),
        sa.CheckConstraint("version > 0", name=op.f("ck_behaviour_models_version")),
    )
    _unforced("behaviour_models", *REGISTRY)
    op.execute(_COPY_BACK)
    op.execute(f"DELETE FROM {SCHEMA}.ai_models WHERE name = '{NAME}'")
    _forced("behaviour_models", *REGISTRY)

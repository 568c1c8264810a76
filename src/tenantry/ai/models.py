"""The AI registry's tables (migration 0021): each tenant's models, their immutable versions and
their aliases.

A version holds its model file (``file``: skops for scikit-learn estimators, JSON for river's
HalfSpaceTrees state; never a pickle), the file's SHA-256 (checked before every load), the
training metrics, the parameters, and the lineage of the data it was trained on. An alias
(``champion``, ``challenger``) names one version of its model; moving it is one upsert.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    LargeBinary,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.rls import tenant_table

__all__ = ["ALIASES", "ai_model_aliases", "ai_model_versions", "ai_models"]

#: The aliases a version can carry: what ``predict`` uses, and the candidate that may replace it.
ALIASES = ("champion", "challenger")

ai_models = tenant_table(
    "ai_models",
    Column("name", Text, primary_key=True),
    Column("model_type", Text, nullable=False),
    #: The highest version number given so far (numbers are never reused, pruned ones included).
    Column("latest_version", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    info={"sample_row": {"model_type": "performance_predictor", "latest_version": 0}},
)

ai_model_versions = tenant_table(
    "ai_model_versions",
    Column("model_name", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    #: ``skops`` or ``river-hst-json`` (see :mod:`tenantry.ai.files`).
    Column("file_format", Text, nullable=False),
    Column("file", LargeBinary, nullable=False),
    Column("sha256", LargeBinary, nullable=False),
    Column("metrics", JSONB, nullable=False),
    Column("parameters", JSONB, nullable=False),
    #: Where the training data came from: source, rows, time range, row count, its SHA-256.
    Column("lineage", JSONB, nullable=False),
    Column("trained_by", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(
        ["tenant_id", "model_name"], ["ai_models.tenant_id", "ai_models.name"], ondelete="CASCADE"
    ),
    CheckConstraint("version >= 1", name="positive"),
)

ai_model_aliases = tenant_table(
    "ai_model_aliases",
    Column("model_name", Text, primary_key=True),
    Column("alias", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(
        ["tenant_id", "model_name", "version"],
        [
            "ai_model_versions.tenant_id",
            "ai_model_versions.model_name",
            "ai_model_versions.version",
        ],
        ondelete="CASCADE",
    ),
    CheckConstraint("alias in ('champion', 'challenger')", name="alias"),
    info={"sample_row": {"alias": "champion"}},
)

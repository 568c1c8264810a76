"""The one :class:`~sqlalchemy.MetaData` every tenantry table belongs to, in schema ``tenantry``."""

from __future__ import annotations

from sqlalchemy import MetaData

__all__ = ["SCHEMA", "metadata"]

SCHEMA = "tenantry"

metadata = MetaData(
    schema=SCHEMA,
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    },
)

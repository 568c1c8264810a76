"""Alembic environment: always run by tenantry.db.migrate with a connection handed over."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from tenantry.db.metadata import SCHEMA, metadata

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - alembic's own CLI is not the way in
    raise SystemExit("run migrations with `tenantry migrate`, not with the alembic command")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table_schema=SCHEMA,
    include_schemas=False,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()

"""``tenant_keys.root_key_version``: the root key version that wraps each KEK.

Root key rotation re-wraps every KEK under a new root key version and may then retire the old
ones, so each KEK row records its version. Rows made before this migration were wrapped by the
only version a root key had then: they are set to 1, tenant by tenant (the table's policy binds
the migration's owner role too). Data-key rows keep NULL (a KEK wraps them, not the root key).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"


def upgrade() -> None:
    op.add_column(
        "tenant_keys", sa.Column("root_key_version", sa.Integer, nullable=True), schema=SCHEMA
    )
    op.execute(
        f"""
        DO $$
        DECLARE tenant text;
        BEGIN
            FOR tenant IN SELECT DISTINCT id FROM {SCHEMA}.tenants LOOP
                PERFORM set_config('tenantry.tenant_id', tenant, true);
                UPDATE {SCHEMA}.tenant_keys SET root_key_version = 1
                 WHERE purpose = 'kek' AND wrapped_key IS NOT NULL AND root_key_version IS NULL;
            END LOOP;
            PERFORM set_config('tenantry.tenant_id', '', true);
        END $$
        """
    )


def downgrade() -> None:
    op.drop_column("tenant_keys", "root_key_version", schema=SCHEMA)

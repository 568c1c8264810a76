"""A tenant's transaction may queue an entry for the platform's audit tree (its key changes).

Key changes of a tenant are recorded on the platform's tree, in the tenant's key transaction, so
that the change and its entry commit together. Row-level security keeps that transaction to the
tenant's rows of ``audit_pending``; this function is the one way across: it inserts one row of
the ``platform`` tenant (nothing else, no read), switching the transaction's tenant for that
statement only. It needs a tenant transaction, and only the application role may call it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

from tenantry.db.migrate import app_role
from tenantry.db.rls import TENANT_SETTING

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
FUNCTION = f'"{SCHEMA}".queue_platform_entry(text, bytea, bytea)'


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION "{SCHEMA}".queue_platform_entry(
            p_id text, p_leaf_hash bytea, p_entry bytea
        ) RETURNS void
        LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
        AS $$
        DECLARE
            caller text := current_setting('{TENANT_SETTING}', true);
        BEGIN
            IF coalesce(caller, '') = '' THEN
                RAISE EXCEPTION 'queue_platform_entry needs a tenant transaction'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            PERFORM set_config('{TENANT_SETTING}', 'platform', true);
            INSERT INTO "{SCHEMA}".audit_pending (tenant_id, id, leaf_hash, entry)
                VALUES ('platform', p_id, p_leaf_hash, p_entry);
            PERFORM set_config('{TENANT_SETTING}', caller, true);
        END
        $$
        """
    )
    op.execute(f"REVOKE ALL ON FUNCTION {FUNCTION} FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION {FUNCTION} TO "{app_role()}"')


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {FUNCTION}")

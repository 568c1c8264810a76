"""Durable workflows (tenantry.workflows): each tenant's sagas, their steps' history, and the two
functions the workers claim and keep them with.

``claim_workflows`` runs outside any tenant's transaction and visits each active tenant (of
``p_only`` when given: a worker dedicated to some tenants) in turn, taking only workflows of the
definitions the worker has (``p_definitions``: a worker never holds one it cannot run)
as that tenant (row-level security applies to every statement it runs): it counts the tenant's
sagas held by a live lease, takes up to the tenant's room under its concurrency cap of its due
ones (``FOR UPDATE SKIP LOCKED``), then leases the first ``p_limit`` of all the candidates in
fair order: each tenant's first before anyone's second, the tenant with fewer sagas running
first. Claims are serialized by a transaction-level advisory lock, so the caps hold exactly.
``renew_workflow_leases`` extends a worker's leases (the heartbeat) and says which it still holds
and which were asked to cancel.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from tenantry.db.migrate import app_role
from tenantry.db.rls import TENANT_SETTING, create_tenant_table

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

SCHEMA = "tenantry"
NOW = sa.func.now()
RUNNABLE = "('pending', 'running', 'compensating')"
STATUSES = (
    "'pending', 'running', 'compensating', 'parked', 'completed', 'compensated', 'failed', "
    "'cancelled'"
)
CLAIM_ARGS = "(text, integer, double precision, jsonb, integer, text[], text[])"
CLAIM = f'"{SCHEMA}".claim_workflows{CLAIM_ARGS}'
RENEW = f'"{SCHEMA}".renew_workflow_leases(text, text[], uuid[], double precision)'


def _tables() -> None:
    create_tenant_table(
        "workflows",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("input", JSONB, nullable=False),
        sa.Column("compensation_strategy", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("phase", sa.Text, nullable=False, server_default="forward"),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.Column("compensate_from", sa.Integer, nullable=False, server_default="-1"),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("lease_owner", sa.Text),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("result", JSONB),
        sa.Column("idempotency_key", sa.Text),
        sa.Column("created_by", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_workflows")),
        sa.UniqueConstraint(
            "tenant_id", "idempotency_key", name=op.f("uq_workflows_tenant_id_idempotency_key")
        ),
        sa.CheckConstraint(f"status in ({STATUSES})", name=op.f("ck_workflows_status")),
        sa.CheckConstraint(
            "compensation_strategy in ('automatic', 'manual', 'none')",
            name=op.f("ck_workflows_compensation_strategy"),
        ),
        sa.CheckConstraint("phase in ('forward', 'compensation')", name=op.f("ck_workflows_phase")),
    )
    op.create_index(
        "ix_workflows_due",
        "workflows",
        ["tenant_id", "next_run_at", "created_at"],
        schema=SCHEMA,
        postgresql_where=sa.text(f"status in {RUNNABLE}"),
    )
    op.create_index(
        "ix_workflows_leased",
        "workflows",
        ["tenant_id", "lease_expires_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("lease_expires_at is not null"),
    )
    op.create_index(
        "ix_workflows_created_at", "workflows", ["tenant_id", "created_at"], schema=SCHEMA
    )
    create_tenant_table(
        "workflow_steps",
        sa.Column("workflow_id", sa.Uuid, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("phase", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("output", JSONB),
        sa.Column("errors", JSONB, nullable=False, server_default="[]"),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint(
            "tenant_id", "workflow_id", "position", "phase", name=op.f("pk_workflow_steps")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "workflow_id"],
            [f"{SCHEMA}.workflows.tenant_id", f"{SCHEMA}.workflows.id"],
            ondelete="CASCADE",
            name=op.f("fk_workflow_steps_tenant_id_workflows"),
        ),
        sa.CheckConstraint(
            "phase in ('forward', 'compensation')", name=op.f("ck_workflow_steps_phase")
        ),
        sa.CheckConstraint(
            "status in ('running', 'done', 'failed')", name=op.f("ck_workflow_steps_status")
        ),
    )


def _functions() -> None:
    op.execute(
        f"""
        CREATE FUNCTION "{SCHEMA}".claim_workflows(
            p_worker text, p_limit integer, p_lease double precision, p_caps jsonb,
            p_default_cap integer, p_only text[], p_definitions text[]
        ) RETURNS TABLE (tenant_id text, workflow_id uuid)
        LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
        AS $$
        DECLARE
            v_now timestamptz;
            t record;
            w record;
            c record;
            v_busy integer;
            v_room integer;
            v_rank integer;
            v_tenants text[] := '{{}}';
            v_ids uuid[] := '{{}}';
            v_ranks integer[] := '{{}}';
            v_busies integer[] := '{{}}';
            v_dues timestamptz[] := '{{}}';
        BEGIN
            IF coalesce(current_setting('{TENANT_SETTING}', true), '') <> '' THEN
                RAISE EXCEPTION 'claim_workflows runs outside any tenant''s transaction'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            PERFORM pg_advisory_xact_lock(hashtext('tenantry.workflows.claim'));
            v_now := clock_timestamp();
            FOR t IN SELECT x.id, x.tier FROM "{SCHEMA}".tenants x
                     WHERE x.status = 'active' AND (p_only IS NULL OR x.id = ANY(p_only))
                     ORDER BY x.id LOOP
                PERFORM set_config('{TENANT_SETTING}', t.id, true);
                SELECT count(*) INTO v_busy FROM "{SCHEMA}".workflows x
                    WHERE x.lease_expires_at > v_now;
                v_room := least(p_limit,
                                coalesce((p_caps ->> t.tier)::integer, p_default_cap) - v_busy);
                CONTINUE WHEN v_room <= 0;
                v_rank := 0;
                FOR w IN SELECT x.id, x.next_run_at FROM "{SCHEMA}".workflows x
                         WHERE x.status IN {RUNNABLE} AND x.next_run_at <= v_now
                           AND (x.lease_expires_at IS NULL OR x.lease_expires_at <= v_now)
                           AND (p_definitions IS NULL OR x.definition = ANY(p_definitions))
                         ORDER BY x.next_run_at, x.created_at
                         LIMIT v_room FOR UPDATE SKIP LOCKED LOOP
                    v_rank := v_rank + 1;
                    v_tenants := v_tenants || t.id;
                    v_ids := v_ids || w.id;
                    v_ranks := v_ranks || v_rank;
                    v_busies := v_busies || v_busy;
                    v_dues := v_dues || w.next_run_at;
                END LOOP;
            END LOOP;
            FOR c IN SELECT u.tid, u.wid
                     FROM unnest(v_tenants, v_ids, v_ranks, v_busies, v_dues)
                          AS u(tid, wid, rk, busy, due)
                     ORDER BY u.rk, u.busy, u.due LIMIT p_limit LOOP
                PERFORM set_config('{TENANT_SETTING}', c.tid, true);
                UPDATE "{SCHEMA}".workflows x
                    SET lease_owner = p_worker,
                        lease_expires_at = v_now + make_interval(secs => p_lease),
                        status = CASE WHEN x.status = 'pending' THEN 'running' ELSE x.status END,
                        updated_at = v_now
                    WHERE x.id = c.wid;
                tenant_id := c.tid;
                workflow_id := c.wid;
                RETURN NEXT;
            END LOOP;
            PERFORM set_config('{TENANT_SETTING}', '', true);
        END
        $$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION "{SCHEMA}".renew_workflow_leases(
            p_worker text, p_tenants text[], p_ids uuid[], p_lease double precision
        ) RETURNS TABLE (tenant_id text, workflow_id uuid, cancel_requested boolean)
        LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
        AS $$
        DECLARE
            c record;
            v_cancel boolean;
        BEGIN
            IF coalesce(current_setting('{TENANT_SETTING}', true), '') <> '' THEN
                RAISE EXCEPTION 'renew_workflow_leases runs outside any tenant''s transaction'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            FOR c IN SELECT u.tid, u.wid FROM unnest(p_tenants, p_ids) AS u(tid, wid) LOOP
                PERFORM set_config('{TENANT_SETTING}', c.tid, true);
                UPDATE "{SCHEMA}".workflows x
                    SET lease_expires_at = clock_timestamp() + make_interval(secs => p_lease)
                    WHERE x.id = c.wid AND x.lease_owner = p_worker
                      AND x.lease_expires_at > clock_timestamp()
                    RETURNING x.cancel_requested INTO v_cancel;
                IF FOUND THEN
                    tenant_id := c.tid;
                    workflow_id := c.wid;
                    cancel_requested := v_cancel;
                    RETURN NEXT;
                END IF;
            END LOOP;
            PERFORM set_config('{TENANT_SETTING}', '', true);
        END
        $$
        """
    )
    for function in (CLAIM, RENEW):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f'GRANT EXECUTE ON FUNCTION {function} TO "{app_role()}"')


def upgrade() -> None:
    _tables()
    _functions()


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {RENEW}")
    op.execute(f"DROP FUNCTION {CLAIM}")
    op.drop_table("workflow_steps", schema=SCHEMA)
    op.drop_table("workflows", schema=SCHEMA)

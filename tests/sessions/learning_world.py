"""Sessions with realistic activity, written straight into a tenant's tables, for the learner.

:func:`seed` stores sessions of ``tests.sessions.behaviour_data.generate`` in a tenant (shifted in
time so the last one ended a day ago), as the manager would have recorded them: a ``sessions`` row
each (expired, or live when asked) and its activity rows. :func:`node` makes a manager with a
small model, as every node of a deployment would be configured.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from tenantry.ai.models import ai_model_versions
from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.sessions.analytics import SessionAnalytics
from tenantry.sessions.behaviour import BehaviourModel
from tenantry.sessions.manager import SessionManager
from tenantry.sessions.models import behaviour_samples, session_activity, sessions
from tenantry.sessions.schemas import BEHAVIOUR_MODEL
from tenantry.sessions.tokens import make_id
from tests.sessions.behaviour_data import LabelledSession, generate

__all__ = ["Seeded", "counts", "node", "normal_sessions", "sample_ids", "seed"]


def node(db: Database, **model: Any) -> SessionManager:
    """A manager whose model trains at 10 samples, every 10 new ones, with 10 trees."""
    settings = {"min_history": 10, "refit_every": 10, "trees": 10, "seed": 1} | model
    return SessionManager(db, analytics=SessionAnalytics(BehaviourModel(**settings)))


def normal_sessions(seed: int, count: int, users: int = 4) -> list[LabelledSession]:
    """``count`` normal sessions (no takeover) of ``users`` users, each user's in time order."""
    per_user = -(-count // users)
    data = generate(
        seed, tenants=1, users_per_tenant=users, sessions_per_user=per_user, attack_rate=0
    )
    return sorted(data, key=lambda s: (s.seq, s.user_id))[:count]


@dataclass(frozen=True)
class Seeded:
    session_ids: list[str]
    shift: timedelta


def day_shift(data: Sequence[LabelledSession]) -> timedelta:
    """Whole days that move ``data``'s last activity to one or two days ago: the hours of day,
    and so the scores, are the same whenever the tests run."""
    last = max(a.at for s in data for a in s.activities)
    return timedelta(days=(datetime.now(UTC) - timedelta(days=1) - last).days)


async def seed(
    db: Database,
    tenant_id: str,
    data: Sequence[LabelledSession],
    *,
    live: bool = False,
    shift: timedelta | None = None,
) -> Seeded:
    """Store ``data`` as sessions of ``tenant_id``, moved by ``shift`` (:func:`day_shift` of
    ``data``); expired 30 minutes after their last activity, or ``live`` (expiring in a day)."""
    shift = day_shift(data) if shift is None else shift
    ids: list[str] = []
    session_rows: list[dict[str, Any]] = []
    activity_rows: list[dict[str, Any]] = []
    for s in data:
        session_id = make_id("ses", tenant_id)
        ids.append(session_id)
        first, last = s.activities[0], s.activities[-1]
        expires = (
            datetime.now(UTC) + timedelta(days=1)
            if live
            else last.at + shift + timedelta(minutes=30)
        )
        session_rows.append(
            {
                "tenant_id": tenant_id,
                "session_id": session_id,
                "user_id": s.user_id,
                "session_type": "user",
                "security_level": "high",
                "token_hash": os.urandom(32),
                "created_at": first.at + shift,
                "last_seen_at": last.at + shift,
                "idle_expires_at": expires,
                "absolute_expires_at": expires,
                "ip": first.ip,
                "user_agent": first.user_agent,
                "device_id": first.device_id,
            }
        )
        activity_rows += [
            {
                "tenant_id": tenant_id,
                "session_id": session_id,
                "user_id": s.user_id,
                "occurred_at": a.at + shift,
                "kind": a.kind,
                "ip": a.ip,
                "user_agent": a.user_agent,
                "device_id": a.device_id,
                "requests": a.requests,
            }
            for a in s.activities
        ]
    with tenant_scope(tenant_id):
        async with db.tenant_transaction() as conn:
            await conn.execute(insert(sessions), session_rows)
            await conn.execute(insert(session_activity), activity_rows)
    return Seeded(ids, shift)


async def counts(db: Database, tenant_id: str) -> dict[str, int]:
    """Samples, stored behaviour model versions (in the registry), and sessions taken, as the
    tenant sees them."""
    with tenant_scope(tenant_id):
        async with db.tenant_transaction() as conn:
            samples = await conn.scalar(select(func.count()).select_from(behaviour_samples))
            models = await conn.scalar(
                select(func.count()).where(ai_model_versions.c.model_name == BEHAVIOUR_MODEL)
            )
            taken = await conn.scalar(
                select(func.count()).where(sessions.c.behaviour_seen_at.is_not(None))
            )
    return {"samples": int(samples or 0), "models": int(models or 0), "taken": int(taken or 0)}


async def sample_ids(db: Database, tenant_id: str) -> list[str]:
    """The sessions in the tenant's training set, oldest sample first."""
    with tenant_scope(tenant_id):
        async with db.tenant_transaction() as conn:
            query = select(behaviour_samples.c.session_id).order_by(behaviour_samples.c.sample_id)
            return list((await conn.execute(query)).scalars())

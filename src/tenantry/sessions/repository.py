"""SQL of the sessions domain (always inside a tenant transaction).

:class:`BehaviourRepository` holds the behaviour learner's: the sessions it takes (each once:
``sessions.behaviour_seen_at``), the tenant's training set, and its behaviour model as the
tenant's AI registry keeps it (``ai_model_versions``, ``ai_model_aliases``: read here in the
caller's transaction; versions are added by :class:`tenantry.ai.MLModelManager`).

Creations of one user's sessions are serialized per (tenant, user) by an advisory lock
(:func:`creation_lock`), sent in the transaction's opening message: each creation then counts
the live sessions every earlier one committed, so the per-user limit holds under concurrency.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import BigInteger, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.engine import RowMapping

from tenantry.ai.models import ai_model_aliases, ai_model_versions, ai_models
from tenantry.db.repository import DriverQuery, TenantRepository
from tenantry.sessions.models import (
    api_keys,
    behaviour_samples,
    session_activity,
    sessions,
)
from tenantry.sessions.schemas import BEHAVIOUR_MODEL

__all__ = [
    "CREATION_LOCK",
    "ApiKeysRepository",
    "BehaviourRepository",
    "SessionsRepository",
    "creation_lock",
]

#: The first key of the per-user creation lock (the second is a hash of tenant and user).
CREATION_LOCK = 0x73657373  # "sess"

_PUBLIC = [c for c in sessions.c if c.name not in ("tenant_id", "token_hash")]

# The statements of a session's creation and of a touch, compiled once and sent straight to
# asyncpg (``DriverQuery``): SQLAlchemy's execution cost more than each statement here.
_INSERTED = (
    *("tenant_id", "session_id", "user_id", "session_type", "security_level", "token_hash"),
    *("created_at", "last_seen_at", "idle_expires_at", "absolute_expires_at"),
    *("ip", "user_agent", "device_id", "step_up_at", "cap"),
)
_INSERTED_GIVEN = frozenset(_INSERTED) - {"tenant_id"}
_INSERT = DriverQuery.compiled(
    insert(sessions).values({c: bindparam(c) for c in _INSERTED}).inline()
)
_LIVE_IDS = DriverQuery.compiled(
    select(sessions.c.session_id)
    .where(
        sessions.c.user_id == bindparam("user_id"),
        sessions.c.revoked_at.is_(None),
        sessions.c.idle_expires_at > bindparam("now"),
        sessions.c.absolute_expires_at > bindparam("now"),
    )
    .order_by(sessions.c.created_at)
)
_BY_TOKEN = DriverQuery.compiled(
    select(sessions).where(sessions.c.token_hash == bindparam("digest"))
)
_TOUCH = DriverQuery.compiled(
    update(sessions)
    .where(sessions.c.session_id == bindparam("session_id"))
    .values(last_seen_at=bindparam("now"), idle_expires_at=bindparam("idle"))
)
_KEY_BY_HASH = DriverQuery.compiled(
    select(api_keys).where(api_keys.c.key_hash == bindparam("digest"))
)
_KEY_USED = DriverQuery.compiled(
    update(api_keys).where(api_keys.c.key_id == bindparam("key_id")).values(last_used_at=func.now())
)
_ACTIVITY = ("tenant_id", "session_id", "user_id", "occurred_at", "kind", "ip", "user_agent")
_RECORD_ACTIVITY = DriverQuery.compiled(
    insert(session_activity)
    .values({c: bindparam(c) for c in (*_ACTIVITY, "device_id", "requests")})
    .inline()  # no RETURNING of the new id
)


def creation_lock(tenant_id: str, user_id: str) -> str:
    """The statement that serializes creations of ``user_id``'s sessions in ``tenant_id``.

    For a transaction's opening message (simple protocol, no parameters), so integer literals
    only: the second key is a 32-bit BLAKE2b of tenant and user computed here, the same on every
    node, and the user id (any text) never reaches the SQL. Two users whose hashes collide only
    wait for each other.
    """
    name = f"{tenant_id}\x00{user_id}".encode("utf-8", "surrogatepass")
    key = int.from_bytes(hashlib.blake2b(name, digest_size=4).digest(), "big", signed=True)
    return f"SELECT pg_advisory_xact_lock({CREATION_LOCK}, {key})"


class SessionsRepository(TenantRepository):
    async def insert(self, **values: Any) -> None:
        """A new session row: every column of ``_INSERTED`` but ``tenant_id``, by name."""
        if values.keys() != _INSERTED_GIVEN:
            raise TypeError(f"a session row takes exactly {sorted(_INSERTED_GIVEN)}")
        await self.execute_driver(_INSERT, {"tenant_id": self.tenant_id, **values})

    async def by_token(self, digest: bytes) -> asyncpg.Record | None:
        """The session row of a token's hash (a validation's cache miss: straight to asyncpg)."""
        rows = await self.fetch_driver(_BY_TOKEN, {"digest": digest})
        return rows[0] if rows else None

    async def by_id(self, session_id: str) -> RowMapping | None:
        query = select(sessions).where(sessions.c.session_id == session_id)
        return (await self.conn.execute(query)).mappings().first()

    async def live_count(self, now: datetime) -> int:
        """How many sessions of the tenant are neither revoked nor expired."""
        query = select(func.count()).where(
            sessions.c.tenant_id == self.tenant_id,
            sessions.c.revoked_at.is_(None),
            sessions.c.idle_expires_at > now,
            sessions.c.absolute_expires_at > now,
        )
        return int(await self.conn.scalar(query) or 0)

    async def live_totals(self, now: datetime) -> tuple[int, int]:
        """(the tenant's live sessions, the users they belong to): neither revoked nor expired."""
        query = select(func.count(), func.count(func.distinct(sessions.c.user_id))).where(
            sessions.c.tenant_id == self.tenant_id,
            sessions.c.revoked_at.is_(None),
            sessions.c.idle_expires_at > now,
            sessions.c.absolute_expires_at > now,
        )
        row = (await self.conn.execute(query)).one()
        return int(row[0]), int(row[1])

    async def live_ids(self, user_id: str, now: datetime) -> list[str]:
        """The ids of the user's sessions that are neither revoked nor expired, oldest first."""
        rows = await self.fetch_driver(_LIVE_IDS, {"user_id": user_id, "now": now})
        return [row[0] for row in rows]

    async def live_for_user(self, user_id: str, now: datetime) -> Sequence[RowMapping]:
        """The user's sessions that are neither revoked nor expired, oldest first."""
        query = (
            select(*_PUBLIC)
            .where(
                sessions.c.user_id == user_id,
                sessions.c.revoked_at.is_(None),
                sessions.c.idle_expires_at > now,
                sessions.c.absolute_expires_at > now,
            )
            .order_by(sessions.c.created_at)
        )
        return (await self.conn.execute(query)).mappings().all()

    async def revoke(self, session_ids: Sequence[str], reason: str, now: datetime) -> list[bytes]:
        """Revoke ``session_ids`` (those not yet revoked); returns their token hashes."""
        if not session_ids:
            return []
        statement = (
            update(sessions)
            .where(sessions.c.session_id.in_(session_ids), sessions.c.revoked_at.is_(None))
            .values(revoked_at=now, revoke_reason=reason)
            .returning(sessions.c.token_hash)
        )
        return [row.token_hash for row in await self.conn.execute(statement)]

    async def touch(self, session_id: str, now: datetime, idle_expires_at: datetime) -> None:
        values = {"session_id": session_id, "now": now, "idle": idle_expires_at}
        await self.execute_driver(_TOUCH, values)

    async def rotate(self, session_id: str, digest: bytes) -> None:
        await self.conn.execute(
            update(sessions).where(sessions.c.session_id == session_id).values(token_hash=digest)
        )

    async def set_step_up(self, session_id: str, at: datetime) -> None:
        await self.conn.execute(
            update(sessions).where(sessions.c.session_id == session_id).values(step_up_at=at)
        )

    async def record_activity(
        self,
        *,
        session_id: str,
        user_id: str,
        occurred_at: datetime,
        kind: str,
        ip: str | None,
        user_agent: str | None,
        device_id: str | None,
        requests: int = 1,
    ) -> None:
        values = {
            "tenant_id": self.tenant_id,
            "session_id": session_id,
            "user_id": user_id,
            "occurred_at": occurred_at,
            "kind": kind,
            "ip": ip,
            "user_agent": user_agent,
            "device_id": device_id,
            "requests": requests,
        }
        await self.execute_driver(_RECORD_ACTIVITY, values)

    async def activity(
        self,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
        limit: int = 5000,
    ) -> Sequence[RowMapping]:
        query = select(session_activity).order_by(session_activity.c.occurred_at).limit(limit)
        if session_id is not None:
            query = query.where(session_activity.c.session_id == session_id)
        if user_id is not None:
            query = query.where(session_activity.c.user_id == user_id)
        if since is not None:
            query = query.where(session_activity.c.occurred_at >= since)
        return (await self.conn.execute(query)).mappings().all()

    async def history(
        self, user_id: str, *, since: datetime, before: datetime, limit: int = 5000
    ) -> list[RowMapping]:
        """The user's activity in ``[since, before)``, the newest ``limit`` rows, oldest first."""
        a = session_activity
        query = (
            select(a)
            .where(a.c.user_id == user_id, a.c.occurred_at >= since, a.c.occurred_at < before)
            .order_by(a.c.occurred_at.desc())
            .limit(limit)
        )
        return list(reversed((await self.conn.execute(query)).mappings().all()))


_KEY_PUBLIC = [c for c in api_keys.c if c.name not in ("tenant_id", "key_hash")]


class ApiKeysRepository(TenantRepository):
    async def insert(self, **values: Any) -> RowMapping:
        statement = (
            insert(api_keys).values(tenant_id=self.tenant_id, **values).returning(*_KEY_PUBLIC)
        )
        return (await self.conn.execute(statement)).mappings().one()

    async def by_hash(self, digest: bytes) -> asyncpg.Record | None:
        """The key's row by its hash (a key check's cache miss: straight to asyncpg)."""
        rows = await self.fetch_driver(_KEY_BY_HASH, {"digest": digest})
        return rows[0] if rows else None

    async def list(self) -> Sequence[RowMapping]:
        query = select(*_KEY_PUBLIC).order_by(api_keys.c.created_at)
        return (await self.conn.execute(query)).mappings().all()

    async def revoke(self, key_id: str) -> bytes | None:
        statement = (
            update(api_keys)
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=func.now())
            .returning(api_keys.c.key_hash)
        )
        row = (await self.conn.execute(statement)).first()
        return None if row is None else bytes(row.key_hash)

    async def mark_used(self, key_id: str) -> None:
        await self.execute_driver(_KEY_USED, {"key_id": key_id})


_samples = behaviour_samples
_versions, _aliases = ai_model_versions, ai_model_aliases


class BehaviourRepository(TenantRepository):
    async def take_ready(
        self, now: datetime, *, ready_activities: int, limit: int
    ) -> Sequence[RowMapping]:
        """Take up to ``limit`` sessions never taken that ended (revoked, expired at ``now``) or
        recorded ``ready_activities`` activities, oldest first: mark them taken and return them
        (``session_id``, ``user_id``, ``created_at``). Two learners never take the same one: the
        rows are locked (``SKIP LOCKED``: one learner does not wait for another) and the mark is
        checked again by the update."""
        s, a = sessions, session_activity
        nth = (
            select(a.c.activity_id)
            .where(a.c.tenant_id == s.c.tenant_id, a.c.session_id == s.c.session_id)
            .order_by(a.c.occurred_at)
            .offset(ready_activities - 1)
            .limit(1)
        )
        ended = or_(
            s.c.revoked_at.is_not(None), s.c.idle_expires_at <= now, s.c.absolute_expires_at <= now
        )
        # Chosen once (MATERIALIZED): as ``IN (subquery)`` the planner may run the LIMIT again
        # for each row it updates, and take more than ``limit``.
        chosen = (
            select(s.c.tenant_id, s.c.session_id)
            .where(s.c.behaviour_seen_at.is_(None), or_(ended, exists(nth)))
            .order_by(s.c.created_at, s.c.session_id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=s)
            .cte("chosen")
            .prefix_with("MATERIALIZED")
        )
        statement = (
            update(s)
            .where(
                s.c.tenant_id == chosen.c.tenant_id,
                s.c.session_id == chosen.c.session_id,
                s.c.behaviour_seen_at.is_(None),
            )
            .values(behaviour_seen_at=now)
            .returning(s.c.session_id, s.c.user_id, s.c.created_at)
        )
        rows = (await self.conn.execute(statement)).mappings().all()
        return sorted(rows, key=lambda r: (r.created_at, r.session_id))

    async def add_samples(self, rows: Sequence[dict[str, Any]]) -> int:
        """Add training samples (``session_id``, ``features``, ``score``); a session that has one
        keeps it (``ON CONFLICT DO NOTHING``). Returns how many were added."""
        if not rows:
            return 0
        statement = (
            upsert(_samples)
            .values([{"tenant_id": self.tenant_id, **row} for row in rows])
            .on_conflict_do_nothing(index_elements=["tenant_id", "session_id"])
            .returning(_samples.c.session_id)
        )
        return len((await self.conn.execute(statement)).all())

    async def keep_newest(self, keep: int) -> int:
        """Delete all but the ``keep`` newest samples; returns how many were deleted."""
        cutoff = (
            select(_samples.c.sample_id)
            .where(_samples.c.tenant_id == self.tenant_id)
            .order_by(_samples.c.sample_id.desc())
            .offset(keep)
            .limit(1)
            .scalar_subquery()
        )
        result = await self.conn.execute(
            delete(_samples).where(
                _samples.c.tenant_id == self.tenant_id, _samples.c.sample_id <= cutoff
            )
        )
        return int(result.rowcount)

    async def sample_counts(self, dimensions: int, after: int) -> tuple[int, int]:
        """(samples of ``dimensions`` features, those of them added after sample ``after``)."""
        usable = func.cardinality(_samples.c.features) == dimensions
        query = select(func.count(), func.count().filter(_samples.c.sample_id > after)).where(
            usable
        )
        total, newer = (await self.conn.execute(query)).one()
        return int(total), int(newer)

    async def samples(self, dimensions: int) -> Sequence[RowMapping]:
        """The training set (``sample_id``, ``session_id``, ``features``, ``learned_at``), oldest
        first."""
        query = (
            select(
                _samples.c.sample_id,
                _samples.c.session_id,
                _samples.c.features,
                _samples.c.learned_at,
            )
            .where(func.cardinality(_samples.c.features) == dimensions)
            .order_by(_samples.c.sample_id)
        )
        return (await self.conn.execute(query)).mappings().all()

    async def champion(self) -> int:
        """The version of the tenant's behaviour model its registry names ``champion`` (0:
        none): one primary-key read, what every node asks before scoring."""
        version = await self.conn.scalar(
            select(_aliases.c.version).where(
                _aliases.c.model_name == BEHAVIOUR_MODEL, _aliases.c.alias == "champion"
            )
        )
        return 0 if version is None else int(version)

    async def model_file(self, version: int) -> RowMapping | None:
        """The registry's ``version`` of the behaviour model: ``model_type``, ``file_format``,
        ``file``, ``sha256``, ``lineage``."""
        m = ai_models
        query = (
            select(
                m.c.model_type,
                _versions.c.file_format,
                _versions.c.file,
                _versions.c.sha256,
                _versions.c.lineage,
            )
            .join(
                m, (m.c.tenant_id == _versions.c.tenant_id) & (m.c.name == _versions.c.model_name)
            )
            .where(_versions.c.model_name == BEHAVIOUR_MODEL, _versions.c.version == version)
        )
        return (await self.conn.execute(query)).mappings().first()

    async def through(self, version: int) -> int:
        """The newest sample ``version`` of the behaviour model was trained on (0: unknown)."""
        through = await self.conn.scalar(
            select(_versions.c.lineage["through"].astext.cast(BigInteger)).where(
                _versions.c.model_name == BEHAVIOUR_MODEL, _versions.c.version == version
            )
        )
        return 0 if through is None else int(through)

    async def purge(self) -> None:
        """Delete the tenant's training set and its behaviour model (every version, alias)."""
        await self.conn.execute(delete(_samples))
        await self.conn.execute(delete(ai_models).where(ai_models.c.name == BEHAVIOUR_MODEL))

"""SQL of the sessions domain (always inside a tenant transaction).

Creations of one user's sessions are serialized per (tenant, user) by an advisory lock
(:func:`creation_lock`), sent in the transaction's opening message: each creation then counts
the live sessions every earlier one committed, so the per-user limit holds under concurrency.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import RowMapping

from tenantry.db.repository import TenantRepository
from tenantry.sessions.models import api_keys, session_activity, sessions

__all__ = ["CREATION_LOCK", "ApiKeysRepository", "SessionsRepository", "creation_lock"]

#: The first key of the per-user creation lock (the second is a hash of tenant and user).
CREATION_LOCK = 0x73657373  # "sess"

_PUBLIC = [c for c in sessions.c if c.name not in ("tenant_id", "token_hash")]


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
    async def insert(self, **values: Any) -> RowMapping:
        statement = (
            insert(sessions).values(tenant_id=self.tenant_id, **values).returning(*sessions.c)
        )
        return (await self.conn.execute(statement)).mappings().one()

    async def by_token(self, digest: bytes) -> RowMapping | None:
        query = select(sessions).where(sessions.c.token_hash == digest)
        return (await self.conn.execute(query)).mappings().first()

    async def by_id(self, session_id: str) -> RowMapping | None:
        query = select(sessions).where(sessions.c.session_id == session_id)
        return (await self.conn.execute(query)).mappings().first()

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
        await self.conn.execute(
            update(sessions)
            .where(sessions.c.session_id == session_id)
            .values(last_seen_at=now, idle_expires_at=idle_expires_at)
        )

    async def rotate(self, session_id: str, digest: bytes) -> None:
        await self.conn.execute(
            update(sessions).where(sessions.c.session_id == session_id).values(token_hash=digest)
        )

    async def set_step_up(self, session_id: str, at: datetime) -> None:
        await self.conn.execute(
            update(sessions).where(sessions.c.session_id == session_id).values(step_up_at=at)
        )

    async def record_activity(self, **values: Any) -> None:
        await self.conn.execute(insert(session_activity).values(tenant_id=self.tenant_id, **values))

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


_KEY_PUBLIC = [c for c in api_keys.c if c.name not in ("tenant_id", "key_hash")]


class ApiKeysRepository(TenantRepository):
    async def insert(self, **values: Any) -> RowMapping:
        statement = (
            insert(api_keys).values(tenant_id=self.tenant_id, **values).returning(*_KEY_PUBLIC)
        )
        return (await self.conn.execute(statement)).mappings().one()

    async def by_hash(self, digest: bytes) -> RowMapping | None:
        query = select(api_keys).where(api_keys.c.key_hash == digest)
        return (await self.conn.execute(query)).mappings().first()

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
        await self.conn.execute(
            update(api_keys).where(api_keys.c.key_id == key_id).values(last_used_at=func.now())
        )

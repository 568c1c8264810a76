"""SessionManager: sessions of users, services and admins, per tenant, with the documents' API.

- ``create_session`` stores the session (PostgreSQL, so sessions survive a restart) and returns
  ``(session_id, token)``; the token is shown once and stored only as its SHA-256.
- ``validate`` is a read: the principal comes from the cache (L1, then Redis) and the database
  only on a miss; ``last_seen`` is written at most once per ``touch_interval`` per session.
- Revocation deletes the cached principal, which the cache's invalidation channel removes from
  every node's L1 as well (measured in ``benchmarks/bench_sessions.py``).
- Idle (sliding) and absolute expiry per session type and security level; at most
  ``max_sessions_per_user`` live sessions per user and tenant (the oldest is revoked).
- At most ``tenant_limit(tenant_id)`` live sessions per tenant, when given (the service gives
  its tier's ``sessions``): one more is refused (:class:`~tenantry.errors.Conflict`, 409) and
  counted (``refused``), nothing created. The tenant's live sessions are counted in the
  database at its first creation, every :data:`LIVE_COUNT_TTL` seconds, and whenever the count
  kept here (the last count plus the creations since) reaches the cap: far from its cap a
  creation costs no query, at the cap the count is exact (a revocation frees a slot at once).
  Creations in flight at once in several processes may pass the cap by their number. The counts
  of at most ``max_live_tenants`` tenants are kept, the least recently used dropped first (their
  next creation counts in the database again).
- CRITICAL and QUANTUM sessions are bound to their device: they are created with the client's
  device id (InvalidInput without one), and another device id revokes them.
- ADMIN sessions at CRITICAL or QUANTUM need a passkey assertion to be created; any session
  opened with one starts stepped up. Admin actions of any session need a fresh step-up
  (:mod:`~tenantry.sessions.stepup`).
- Creation, token rotation, step-up and revocation write the tenant's audit log, in the
  transaction of the change (``session.create`` ... ``session.revoke``).

This module holds creation, token rotation and revocation, and composes the rest:
:mod:`~tenantry.sessions.parts` (the constructor, the parts, the shared internals),
:mod:`~tenantry.sessions.validation` (``validate``, the hot path),
:mod:`~tenantry.sessions.stepup` (admin step-up) and :mod:`~tenantry.sessions.reports` (listing,
a session's record, analytics). :class:`SessionManagerFactory` makes configured managers.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Final

from tenantry.cache.manager import CacheManager
from tenantry.context import RESERVED_TENANTS, tenant_scope, validate_tenant_id
from tenantry.db.engine import Database
from tenantry.errors import (
    AuthenticationError,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from tenantry.levels import SecurityLevel
from tenantry.passkeys.stepup import step_up_required
from tenantry.principal import ClientInfo, Principal
from tenantry.sessions.parts import STRONG, cache_key, utcnow
from tenantry.sessions.reports import SessionReports
from tenantry.sessions.repository import SessionsRepository, creation_lock
from tenantry.sessions.schemas import SessionPolicy, SessionType
from tenantry.sessions.stepup import SessionStepUp
from tenantry.sessions.tokens import hash_token, make_id, make_token
from tenantry.tracing import traced
from tenantry.validation import parse_enum

__all__ = ["LIVE_COUNT_TTL", "SessionManager", "SessionManagerFactory"]

#: Seconds a tenant's count of live sessions is trusted (with the creations since added).
LIVE_COUNT_TTL: Final = 30.0


class SessionManager(SessionStepUp, SessionReports):
    """See the module docstring. Make it with no arguments, or give it the app's parts."""

    # -- create ----------------------------------------------------------------------------------

    @traced("sessions.create")
    async def create_session(
        self,
        tenant_id: str,
        user_id: str,
        session_type: SessionType | str = SessionType.USER,
        security_level: SecurityLevel | str = SecurityLevel.HIGH,
        *,
        client: ClientInfo | None = None,
        passkey_challenge_id: str | None = None,
        passkey_credential: dict[str, Any] | str | None = None,
        actor: str | None = None,
        minted_by: Principal | None = None,
    ) -> tuple[str, str]:
        """A new session: ``(session_id, token)``. The token is returned only here.

        ``actor``: who asked for it, for the audit log (``system`` when not given).
        ``minted_by``: the credential asking for it (the HTTP route passes the caller): the
        session never does more than it could, whatever the user's roles (its actions are the
        session's ceiling; the platform's service token, which may do everything, sets none).
        """
        validate_tenant_id(tenant_id)
        if tenant_id in RESERVED_TENANTS:
            raise PermissionDenied(f"tenant {tenant_id!r} is tenantry's own: it has no sessions")
        if not isinstance(user_id, str) or not 0 < len(user_id) <= 200:
            raise InvalidInput("user_id must be 1-200 characters")
        kind, level = (
            parse_enum(SessionType, session_type),
            parse_enum(SecurityLevel, security_level),
        )
        client = client or ClientInfo()
        if level in STRONG and not (client.device_id or "").strip():
            raise InvalidInput(
                f"a {level.name} session is bound to its device: give the client's device_id"
            )
        cap = None if minted_by is None else await self._ceiling(minted_by)
        now = utcnow()
        step_up_at = None
        if passkey_challenge_id is not None and passkey_credential is not None:
            passkeys = await self._passkey_manager()  # opened with a passkey: stepped up
            await passkeys.verify_authentication(
                tenant_id, user_id, passkey_challenge_id, passkey_credential
            )
            step_up_at = now
        elif step_up_required(kind, level):
            raise AuthenticationError(
                "an ADMIN session at CRITICAL or QUANTUM level needs a passkey assertion"
            )
        if self.tenant_limit is not None:
            await self._check_room(tenant_id, await self.tenant_limit(tenant_id), now)
        expiry = self.policy.for_session(kind, level)
        session_id, token = make_id("ses", tenant_id), make_token("s", tenant_id)
        db, trail = await self._db(), await self._trail(tenant_id)
        evicted: list[bytes] = []
        with tenant_scope(tenant_id):
            # Serialized per user (the lock comes with BEGIN): the count below sees every
            # creation committed before, so concurrent creations cannot exceed the limit.
            lock = creation_lock(tenant_id, user_id)
            async with db.tenant_transaction(prologue=lock) as conn:
                repo = SessionsRepository(conn)
                live = await repo.live_ids(user_id, now)
                excess = len(live) + 1 - self.policy.max_sessions_per_user
                if excess > 0:
                    oldest = live[:excess]
                    evicted = await repo.revoke(oldest, "session limit: oldest evicted", now)
                await repo.insert(
                    session_id=session_id,
                    user_id=user_id,
                    session_type=kind.value,
                    security_level=level.value,
                    token_hash=hash_token(token),
                    created_at=now,
                    last_seen_at=now,
                    idle_expires_at=min(now + expiry.idle, now + expiry.absolute),
                    absolute_expires_at=now + expiry.absolute,
                    ip=client.ip,
                    user_agent=client.user_agent,
                    device_id=client.device_id,
                    step_up_at=step_up_at,
                    cap=None if cap is None else sorted(cap),
                )
                await repo.record_activity(
                    session_id=session_id,
                    user_id=user_id,
                    occurred_at=now,
                    kind="create",
                    ip=client.ip,
                    user_agent=client.user_agent,
                    device_id=client.device_id,
                )
                detail: dict[str, Any] = {"user": user_id, "type": kind.value}
                detail |= {"level": level.value, "evicted": len(evicted)}
                await trail.record(
                    tenant_id, "session.create", f"session:{session_id}", actor=actor, detail=detail
                )
            for digest in evicted:
                await self.cache.delete(cache_key(digest))
        self._created[tenant_id] += 1
        if (known := self._live.get(tenant_id)) is not None:
            self._live[tenant_id] = (known[0] + 1 - len(evicted), known[1])
            self._live.move_to_end(tenant_id)
        return session_id, token

    async def _check_room(self, tenant_id: str, limit: int, now: datetime) -> None:
        """Conflict if the tenant has ``limit`` live sessions (see the module docstring)."""
        known, at = self._live.get(tenant_id), time.monotonic()
        if known is None or at - known[1] > LIVE_COUNT_TTL or known[0] >= limit:
            with tenant_scope(tenant_id):
                async with (await self._db()).tenant_transaction() as conn:
                    known = (await SessionsRepository(conn).live_count(now), at)
            self._live[tenant_id] = known
            self._live.move_to_end(tenant_id)
            while len(self._live) > self.max_live_tenants:  # the least recently counted go
                self._live.popitem(last=False)
        if known[0] >= limit:
            self.refused[tenant_id] += 1
            raise Conflict(
                f"tenant {tenant_id!r} has {known[0]} live sessions, its tier's limit of "
                f"{limit}: revoke one first"
            )

    # -- refresh, revoke -------------------------------------------------------------------------

    async def refresh(self, token: str, *, client: ClientInfo | None = None) -> tuple[str, str]:
        """Rotate the token of a live session: ``(session_id, new_token)``; the old one dies.

        ``client``: the caller's, as for :meth:`validate`; a session bound to a device (CRITICAL,
        QUANTUM) is refreshed only from that device, and another one revokes it.
        """
        principal = await self.validate(token, client=client)
        assert principal.session_id is not None  # noqa: S101 - sessions have ids
        fresh = make_token("s", principal.tenant_id)
        db, trail = await self._db(), await self._trail(principal.tenant_id)
        with tenant_scope(principal.tenant_id):
            async with db.tenant_transaction() as conn:
                await SessionsRepository(conn).rotate(principal.session_id, hash_token(fresh))
                await trail.record(
                    principal.tenant_id,
                    "session.refresh",
                    f"session:{principal.session_id}",
                    actor=principal.principal_id,
                )
            await self.cache.delete(cache_key(hash_token(token)))
        return principal.session_id, fresh

    async def revoke(
        self,
        session_id: str,
        *,
        tenant_id: str | None = None,
        reason: str = "revoked",
        actor: str | None = None,
    ) -> None:
        """Revoke one session; NotFound if it does not exist (in this tenant)."""
        tenant = self._tenant_of(session_id, tenant_id)
        if not await self._revoke_ids(tenant, [session_id], reason, utcnow(), actor):
            with tenant_scope(tenant):
                db = await self._db()
                async with db.tenant_transaction() as conn:
                    exists = await SessionsRepository(conn).by_id(session_id)
            if exists is None:
                raise NotFound(f"session {session_id!r} does not exist")

    async def revoke_all(
        self,
        tenant_id: str,
        user_id: str,
        *,
        except_session: str | None = None,
        actor: str | None = None,
    ) -> int:
        """Revoke every live session of ``user_id`` but ``except_session``; returns the count."""
        validate_tenant_id(tenant_id)
        now = utcnow()
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                live = await SessionsRepository(conn).live_ids(user_id, now)
        ids = [session_id for session_id in live if session_id != except_session]
        reason = "revoked with the user's others"
        return len(await self._revoke_ids(tenant_id, ids, reason, now, actor))


class SessionManagerFactory:
    """The documents' factory: managers configured for production or development."""

    @staticmethod
    def create_production_manager(
        database: Database | None = None, cache: CacheManager | None = None
    ) -> SessionManager:
        """Strict defaults: 5 concurrent sessions per user, 30 s cached validation."""
        return SessionManager(
            database, cache=cache, policy=SessionPolicy(max_sessions_per_user=5, cache_ttl=30.0)
        )

    @staticmethod
    def create_development_manager(database: Database | None = None) -> SessionManager:
        return SessionManager(database)

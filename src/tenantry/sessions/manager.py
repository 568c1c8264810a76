"""SessionManager: sessions of users, services and admins, per tenant, with the documents' API.

- ``create_session`` stores the session (PostgreSQL, so sessions survive a restart) and returns
  ``(session_id, token)``; the token is shown once and stored only as its SHA-256.
- ``validate`` is a read: the principal comes from the cache (L1, then Redis) and the database
  only on a miss; ``last_seen`` is written at most once per ``touch_interval`` per session.
- Revocation deletes the cached principal, which the cache's invalidation channel removes from
  every node's L1 as well (measured in ``benchmarks/bench_sessions.py``).
- Idle (sliding) and absolute expiry per session type and security level; at most
  ``max_sessions_per_user`` live sessions per user and tenant (the oldest is revoked).
- CRITICAL and QUANTUM sessions are bound to their device: another device id revokes them.
- ADMIN sessions at CRITICAL or QUANTUM need a passkey assertion to be created.
- Creation, token rotation, step-up and revocation write the tenant's audit log, in the
  transaction of the change (``session.create`` ... ``session.revoke``).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tenantry.cache.manager import CacheManager
from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import AuthenticationError, InvalidInput, NotFound
from tenantry.levels import SecurityLevel
from tenantry.passkeys.stepup import assertion_is_fresh
from tenantry.principal import ClientInfo, Principal, PrincipalKind
from tenantry.sessions.repository import SessionsRepository
from tenantry.sessions.schemas import SessionInfo, SessionPolicy, SessionType
from tenantry.sessions.tokens import hash_token, make_id, make_token, parse_token, tenant_of_id
from tenantry.threats.events import SecurityEvents, Severity
from tenantry.validation import parse_enum

if TYPE_CHECKING:
    from tenantry.access.manager import AccessControl
    from tenantry.passkeys.manager import PasskeyManager
    from tenantry.sessions.analytics import SessionAnalytics

__all__ = ["SessionManager", "SessionManagerFactory"]

_STRONG = (SecurityLevel.CRITICAL, SecurityLevel.QUANTUM)


def _now() -> datetime:
    return datetime.now(UTC)


def _cache_key(digest: bytes) -> str:
    return "session:" + digest.hex()


class SessionManager(RecordsChanges):
    """See the module docstring. Make it with no arguments, or give it the app's parts."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        cache: CacheManager | None = None,
        access: AccessControl | None = None,
        passkeys: PasskeyManager | None = None,
        events: SecurityEvents | None = None,
        policy: SessionPolicy | None = None,
        analytics: SessionAnalytics | None = None,
        audit: ChangeLog | None = None,
    ) -> None:
        self._database = database
        self._audit = audit
        self.cache = cache or CacheManager(l1_bytes=16 * 1024 * 1024)
        self._access = access
        self._passkeys = passkeys
        self.events = events
        self.policy = policy or SessionPolicy()
        self._analytics = analytics
        #: Requests validated since the last touch, per (tenant, session): the activity's count.
        self._pending: defaultdict[tuple[str, str], int] = defaultdict(int)
        self._failed_budget: dict[str, tuple[float, int]] = {}
        #: token -> [parsed token, cache key, cached entry, principal built from it]
        self._memo: dict[str, list[Any]] = {}
        self._touch_seconds = self.policy.touch_interval.total_seconds()
        self._analytics_lock = asyncio.Lock()

    async def initialize(self) -> None:
        """Resolve the database and the parts made on demand (the documents call this)."""
        db = await self._db()
        if self.events is None:
            self.events = SecurityEvents(db)
        if self._access is None:
            from tenantry.access.manager import AccessControl  # noqa: PLC0415 - optional part

            self._access = AccessControl(db)

    @property
    def analytics(self) -> SessionAnalytics:
        if self._analytics is None:
            from tenantry.sessions.analytics import SessionAnalytics  # noqa: PLC0415 - numpy/sklearn

            self._analytics = SessionAnalytics()
        return self._analytics

    async def _events(self) -> SecurityEvents:
        if self.events is None:
            await self.initialize()
        assert self.events is not None  # noqa: S101 - set by initialize
        return self.events

    # -- create ----------------------------------------------------------------------------------

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
    ) -> tuple[str, str]:
        """A new session: ``(session_id, token)``. The token is returned only here.

        ``actor``: who asked for it, for the audit log (``system`` when not given).
        """
        validate_tenant_id(tenant_id)
        if not isinstance(user_id, str) or not 0 < len(user_id) <= 200:
            raise InvalidInput("user_id must be 1-200 characters")
        kind, level = (
            parse_enum(SessionType, session_type),
            parse_enum(SecurityLevel, security_level),
        )
        client = client or ClientInfo()
        now = _now()
        step_up_at = None
        if kind is SessionType.ADMIN and level in _STRONG:
            if passkey_challenge_id is None or passkey_credential is None:
                raise AuthenticationError(
                    "an ADMIN session at CRITICAL or QUANTUM level needs a passkey assertion"
                )
            passkeys = await self._passkey_manager()
            await passkeys.verify_authentication(
                tenant_id, user_id, passkey_challenge_id, passkey_credential
            )
            step_up_at = now
        expiry = self.policy.for_session(kind, level)
        session_id, token = make_id("ses", tenant_id), make_token("s", tenant_id)
        db, trail = await self._db(), await self._trail(tenant_id)
        evicted: list[bytes] = []
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                repo = SessionsRepository(conn)
                live = await repo.live_for_user(user_id, now)
                excess = len(live) + 1 - self.policy.max_sessions_per_user
                if excess > 0:
                    oldest = [row.session_id for row in live[:excess]]
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
                await self.cache.delete(_cache_key(digest))
        return session_id, token

    # -- validate --------------------------------------------------------------------------------

    async def validate(self, token: str, *, client: ClientInfo | None = None) -> Principal:
        """The principal of a live session token; AuthenticationError otherwise."""
        memo = self._memo.get(token)
        if memo is None:
            parsed = parse_token(token, "s")
            memo = [parsed, _cache_key(parsed.digest), None, None]
            if len(self._memo) >= 50_000:
                self._memo.clear()  # a bound, not an LRU: refilling costs one parse per token
            self._memo[token] = memo
        parsed, key = memo[0], memo[1]
        tenant_id = parsed.tenant_id
        stamp = time.time()
        with tenant_scope(tenant_id):
            cached = await self.cache.get(key)
            if cached is None:
                cached = await self._load(tenant_id, parsed.digest, token, client, _now())
                await self.cache.set(key, cached, ttl=self.policy.cache_ttl)
            if stamp >= cached["idle"] or stamp >= cached["absolute"]:
                raise AuthenticationError("the session has expired")
            device = client.device_id if client else None
            if cached["level"] in _STRONG and device != cached["device"]:
                await self._revoke_ids(tenant_id, [cached["id"]], "device changed", _now())
                await self._event(
                    tenant_id,
                    "device_mismatch",
                    Severity.HIGH,
                    session=cached,
                    client=client,
                    detail={"expected_device": cached["device"], "device": device},
                )
                raise AuthenticationError("the session is bound to another device")
            self._pending[(tenant_id, cached["id"])] += 1
            if stamp - cached["touched"] >= self._touch_seconds:
                cached = await self._touch(tenant_id, cached, client, _now())
                await self.cache.set(key, cached, ttl=self.policy.cache_ttl)
        if memo[2] is not cached:  # the principal is rebuilt only when the cached entry changed
            memo[2], memo[3] = cached, _principal(tenant_id, cached)
        principal: Principal = memo[3]
        return principal

    async def _load(
        self, tenant_id: str, digest: bytes, token: str, client: ClientInfo | None, now: datetime
    ) -> dict[str, Any]:
        db = await self._db()
        async with db.tenant_transaction() as conn:
            row = await SessionsRepository(conn).by_token(digest)
        if row is None or hash_token(token) != bytes(row.token_hash):
            await self._failed(tenant_id, client)
            raise AuthenticationError("invalid session token")
        if row.revoked_at is not None:
            await self._event(
                tenant_id,
                "revoked_token_use",
                Severity.MEDIUM,
                session={"id": row.session_id, "user": row.user_id},
                client=client,
                detail={"reason": row.revoke_reason},
            )
            raise AuthenticationError("the session was revoked")
        roles = await self._roles(tenant_id, row.user_id)
        return {
            "id": row.session_id,
            "user": row.user_id,
            "type": row.session_type,
            "level": row.security_level,
            "roles": sorted(roles),
            "idle": row.idle_expires_at.timestamp(),
            "absolute": row.absolute_expires_at.timestamp(),
            "touched": row.last_seen_at.timestamp(),
            "device": row.device_id,
            "step_up": row.step_up_at.timestamp() if row.step_up_at else None,
        }

    async def _touch(
        self, tenant_id: str, cached: dict[str, Any], client: ClientInfo | None, now: datetime
    ) -> dict[str, Any]:
        kind, level = SessionType(cached["type"]), SecurityLevel(cached["level"])
        idle = min(
            now + self.policy.for_session(kind, level).idle,
            datetime.fromtimestamp(cached["absolute"], UTC),
        )
        requests = self._pending.pop((tenant_id, cached["id"]), 1)
        db = await self._db()
        async with db.tenant_transaction() as conn:
            repo = SessionsRepository(conn)
            await repo.touch(cached["id"], now, idle)
            await repo.record_activity(
                session_id=cached["id"],
                user_id=cached["user"],
                occurred_at=now,
                kind="validate",
                ip=client.ip if client else None,
                user_agent=client.user_agent if client else None,
                device_id=client.device_id if client else None,
                requests=requests,
            )
        return {**cached, "idle": idle.timestamp(), "touched": now.timestamp()}

    # -- refresh, revoke, list -------------------------------------------------------------------

    async def refresh(self, token: str) -> tuple[str, str]:
        """Rotate the token of a live session: ``(session_id, new_token)``; the old one dies."""
        principal = await self.validate(token)
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
            await self.cache.delete(_cache_key(hash_token(token)))
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
        if not await self._revoke_ids(tenant, [session_id], reason, _now(), actor):
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
        now = _now()
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                live = await SessionsRepository(conn).live_for_user(user_id, now)
        ids = [row.session_id for row in live if row.session_id != except_session]
        reason = "revoked with the user's others"
        return len(await self._revoke_ids(tenant_id, ids, reason, now, actor))

    async def list_sessions(self, tenant_id: str, user_id: str) -> list[SessionInfo]:
        """The user's live sessions, oldest first."""
        validate_tenant_id(tenant_id)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                rows = await SessionsRepository(conn).live_for_user(user_id, _now())
        return [SessionInfo.model_validate(dict(r)) for r in rows]

    async def session_info(self, session_id: str, *, tenant_id: str | None = None) -> SessionInfo:
        tenant = self._tenant_of(session_id, tenant_id)
        db = await self._db()
        with tenant_scope(tenant):
            async with db.tenant_transaction() as conn:
                row = await SessionsRepository(conn).by_id(session_id)
        if row is None:
            raise NotFound(f"session {session_id!r} does not exist")
        return SessionInfo.model_validate(dict(row))

    async def get_session_analytics(
        self, session_id: str, *, tenant_id: str | None = None
    ) -> dict[str, Any]:
        """Behaviour of a session: its features and ``anomaly_score`` in [0, 1]."""
        info = await self.session_info(session_id, tenant_id=tenant_id)
        tenant = self._tenant_of(session_id, tenant_id)
        db = await self._db()
        with tenant_scope(tenant):
            async with db.tenant_transaction() as conn:
                repo = SessionsRepository(conn)
                own = await repo.activity(session_id=session_id)
                history = await repo.activity(
                    user_id=info.user_id, since=_now() - timedelta(days=30)
                )
        # Scoring (and, every few hundred sessions, refitting the tenant's model) is CPU work:
        # off the event loop, one at a time, since the model is shared state.
        async with self._analytics_lock:
            report = await asyncio.to_thread(self.analytics.report, tenant, info, own, history)
        if report["anomaly"]:
            await self._event(
                tenant,
                "anomaly",
                Severity.HIGH,
                session={"id": session_id, "user": info.user_id},
                detail={"score": report["anomaly_score"]},
            )
        return report

    async def step_up(
        self, token: str, challenge_id: str, credential: dict[str, Any] | str
    ) -> None:
        """Record a fresh passkey assertion on the session of ``token`` (admin step-up)."""
        principal = await self.validate(token)
        assert principal.session_id is not None  # noqa: S101 - sessions have ids
        passkeys = await self._passkey_manager()
        await passkeys.verify_authentication(
            principal.tenant_id,
            principal.principal_id,
            challenge_id,
            credential,
            session_id=principal.session_id,
        )
        now = _now()
        db, trail = await self._db(), await self._trail(principal.tenant_id)
        with tenant_scope(principal.tenant_id):
            async with db.tenant_transaction() as conn:
                await SessionsRepository(conn).set_step_up(principal.session_id, now)
                await trail.record(
                    principal.tenant_id,
                    "session.step_up",
                    f"session:{principal.session_id}",
                    actor=principal.principal_id,
                )
            await self.cache.delete(_cache_key(hash_token(token)))

    def needs_step_up(self, principal: Principal, now: datetime | None = None) -> bool:
        """Whether an admin action by ``principal`` needs a fresh passkey assertion first."""
        if principal.session_type != SessionType.ADMIN or principal.security_level not in _STRONG:
            return False
        return not assertion_is_fresh(
            principal.step_up_at, self.policy.step_up_max_age, now or _now()
        )

    # -- internals -------------------------------------------------------------------------------

    def _tenant_of(self, session_id: str, tenant_id: str | None) -> str:
        named = tenant_of_id(session_id, "ses") if isinstance(session_id, str) else None
        if named is None or (tenant_id is not None and named != tenant_id):
            raise NotFound(f"session {session_id!r} does not exist")
        return named

    async def _revoke_ids(
        self,
        tenant_id: str,
        ids: list[str],
        reason: str,
        now: datetime,
        actor: str | None = None,
    ) -> list[bytes]:
        db, trail = await self._db(), await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                digests = await SessionsRepository(conn).revoke(ids, reason, now)
                if digests:
                    resource = f"session:{ids[0]}" if len(ids) == 1 else "sessions"
                    detail: dict[str, Any] = {"reason": reason, "revoked": len(digests)}
                    if len(ids) > 1:
                        detail["sessions"] = ids
                    await trail.record(
                        tenant_id, "session.revoke", resource, actor=actor, detail=detail
                    )
            for session_id in ids:  # their request counters end with them
                self._pending.pop((tenant_id, session_id), None)
            for digest in digests:
                await self.cache.delete(_cache_key(bytes(digest)))
        return digests

    async def _roles(self, tenant_id: str, user_id: str) -> frozenset[str]:
        if self._access is None:
            await self.initialize()
        assert self._access is not None  # noqa: S101 - set by initialize
        return await self._access.roles_of(tenant_id, user_id)

    async def _passkey_manager(self) -> PasskeyManager:
        if self._passkeys is None:
            from tenantry.passkeys.manager import PasskeyManager  # noqa: PLC0415 - optional part

            self._passkeys = PasskeyManager(await self._db())
        return self._passkeys

    async def _failed(self, tenant_id: str, client: ClientInfo | None) -> None:
        """A failed validation: a security event, at most 20 a minute per tenant per node."""
        window, count = self._failed_budget.get(tenant_id, (0.0, 0))
        now = time.monotonic()
        if now - window > 60:
            window, count = now, 0
        self._failed_budget[tenant_id] = (window, count + 1)
        if count < 20:
            await self._event(
                tenant_id, "failed_validation", Severity.LOW, session={}, client=client
            )

    async def _event(
        self,
        tenant_id: str,
        kind: str,
        severity: Severity,
        *,
        session: dict[str, Any],
        client: ClientInfo | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        events = await self._events()
        await events.record(
            tenant_id,
            kind,
            severity=severity,
            principal_id=session.get("user"),
            session_id=session.get("id"),
            ip=client.ip if client else None,
            detail=detail or {},
        )


def _principal(tenant_id: str, cached: dict[str, Any]) -> Principal:
    step_up = cached.get("step_up")
    return Principal(
        tenant_id=tenant_id,
        principal_id=cached["user"],
        kind=PrincipalKind.SESSION,
        roles=frozenset(cached["roles"]),
        session_id=cached["id"],
        session_type=cached["type"],
        security_level=cached["level"],
        step_up_at=datetime.fromtimestamp(step_up, UTC) if step_up else None,
    )


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

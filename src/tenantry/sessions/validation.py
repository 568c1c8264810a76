"""The hot path: a session token to its principal (:meth:`SessionValidation.validate`).

Every token of a tenant that is not active is refused (:class:`~tenantry.tenants.ActiveTenants`,
cached like the session); a token naming no tenant is refused like any invalid one, before
anything is looked up or recorded. A token seen before on this node is in an in-process memo
keyed by its SHA-256 (its parsed form, its cache key and the principal built from the last cached
entry), so a cache hit hashes the token and parses and builds nothing; no token is kept.
The cached entry comes from the cache (L1, then Redis) and the database only on a miss;
``last_seen`` is written at most once per ``touch_interval`` per session, with the count of
requests validated since. CRITICAL and QUANTUM sessions are bound to their device: another
device id revokes them. Failed validations are security events, at most 20 a minute per tenant.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from tenantry.cache import FillToken
from tenantry.context import tenant_scope
from tenantry.errors import AuthenticationError
from tenantry.levels import SecurityLevel
from tenantry.principal import ClientInfo, Principal, PrincipalKind
from tenantry.sessions.parts import (
    ALL_SESSIONS_TAG,
    STRONG,
    SessionParts,
    cache_key,
    user_tag,
    utcnow,
)
from tenantry.sessions.repository import SessionsRepository
from tenantry.sessions.schemas import SessionType
from tenantry.sessions.tokens import hash_token, parse_token
from tenantry.threats.events import Severity
from tenantry.tracing import traced

__all__ = ["SessionValidation"]


class SessionValidation(SessionParts):
    """Validation of session tokens, with its memo and its touch of ``last_seen``."""

    def _setup(self) -> None:
        super()._setup()
        #: token hash -> [parsed token, cache key, cached entry, principal built from it]
        self._memo: dict[bytes, list[Any]] = {}
        #: tenant -> (start of the minute, failed validations in it): the events' budget
        self._failed_budget: dict[str, tuple[float, int]] = {}
        self._touch_seconds = self.policy.touch_interval.total_seconds()

    @traced("sessions.validate")
    async def validate(self, token: str, *, client: ClientInfo | None = None) -> Principal:
        """The principal of a live session token; AuthenticationError otherwise."""
        # Keyed by the token's hash, never the token: no bearer secret is kept in memory.
        digest = hash_token(token) if type(token) is str and len(token) < 200 else b""
        memo = self._memo.get(digest)
        if memo is None:
            parsed = parse_token(token, "s")
            memo = [parsed, cache_key(parsed.digest), None, None]
            if len(self._memo) >= 50_000:
                self._memo.clear()  # a bound, not an LRU: refilling costs one parse per token
            self._memo[digest] = memo
        parsed, key = memo[0], memo[1]
        tenant_id = parsed.tenant_id
        stamp = time.time()
        active = self._active or await self._active_tenants()
        if not active.exists(tenant_id) and not await active.known(tenant_id):
            raise AuthenticationError("invalid session token")  # as for any forged token
        with tenant_scope(tenant_id):
            cached = await self.cache.get(key)
            if cached is None:
                # A fill: cached only if no node dropped the entry (a revocation, a role change)
                # since the token, taken before the read (the session may be revoked meanwhile).
                fill = await self.cache.fill_token(key)
                cached = await self._load(tenant_id, parsed.digest, token, client, utcnow())
                await self._keep(key, cached, fill)
            await active.check(tenant_id)  # a genuine token of a tenant that is not active
            if stamp >= cached["idle"] or stamp >= cached["absolute"]:
                raise AuthenticationError("the session has expired")
            device = client.device_id if client else None
            if cached["level"] in STRONG and device != cached["device"]:
                await self._revoke_ids(tenant_id, [cached["id"]], "device changed", utcnow())
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
                fill = await self.cache.fill_token(key)
                touched = await self._touch(tenant_id, cached, client, utcnow())
                # Written back only if nothing dropped the entry meanwhile (a role change, a
                # revocation): a stale copy must not outlive the change that dropped it.
                if await self.cache.get(key) is cached:
                    await self._keep(key, touched, fill)
                cached = touched
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
        if row is None or hash_token(token) != bytes(row["token_hash"]):
            await self._failed(tenant_id, client)
            raise AuthenticationError("invalid session token")
        session_id, user_id = row["session_id"], row["user_id"]
        if row["revoked_at"] is not None:
            await self._event(
                tenant_id,
                "revoked_token_use",
                Severity.MEDIUM,
                session={"id": session_id, "user": user_id},
                client=client,
                detail={"reason": row["revoke_reason"]},
            )
            raise AuthenticationError("the session was revoked")
        roles = await self._roles(tenant_id, user_id)
        step_up, cap = row["step_up_at"], row["cap"]
        return {
            "id": session_id,
            "user": user_id,
            "type": row["session_type"],
            "level": row["security_level"],
            "roles": sorted(roles),
            "idle": row["idle_expires_at"].timestamp(),
            "absolute": row["absolute_expires_at"].timestamp(),
            "touched": row["last_seen_at"].timestamp(),
            "device": row["device_id"],
            "step_up": step_up.timestamp() if step_up else None,
            "cap": None if cap is None else list(cap),
        }

    async def _keep(self, key: str, cached: dict[str, Any], token: FillToken) -> None:
        """Cache a session's entry read after ``token``, tagged with its user and as a session of
        its tenant (role changes drop it: the user's, or the tenant's default role)."""
        tags = (user_tag(cached["user"]), ALL_SESSIONS_TAG)
        await self.cache.fill(key, cached, token, ttl=self.policy.cache_ttl, tags=tags)

    async def _touch(
        self, tenant_id: str, cached: dict[str, Any], client: ClientInfo | None, now: datetime
    ) -> dict[str, Any]:
        kind, level = SessionType(cached["type"]), SecurityLevel(cached["level"])
        idle = min(
            now + self.policy.for_session(kind, level).idle,
            datetime.fromtimestamp(cached["absolute"], UTC),
        )
        requests = self._pending.pop((tenant_id, cached["id"]), 1)
        roles = await self._roles(tenant_id, cached["user"])  # as of now, not of the last load
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
        self._notice_learner(tenant_id)
        return {
            **cached,
            "roles": sorted(roles),
            "idle": idle.timestamp(),
            "touched": now.timestamp(),
        }

    async def _roles(self, tenant_id: str, user_id: str) -> frozenset[str]:
        if self._access is None:
            await self.initialize()
        assert self._access is not None  # noqa: S101 - set by initialize
        return await self._access.effective_roles(tenant_id, user_id)

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
        cap=None if cached.get("cap") is None else frozenset(cached["cap"]),
    )

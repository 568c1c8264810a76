"""What a SessionManager is made of: its parts, and the internals its responsibilities share.

:class:`SessionParts` takes the app's parts (database, cache, access control, passkeys, security
events, policy, analytics, audit log) or makes them on demand, records security events, and
revokes sessions by id, which validation does too (a strong session seen on another device).
Each responsibility mixed into :class:`~tenantry.sessions.manager.SessionManager` builds on it and
sets up its own per-node state in :meth:`SessionParts._setup`.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from tenantry.access.manager import AccessControl
from tenantry.cache.manager import CacheManager
from tenantry.context import tenant_scope
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import NotFound
from tenantry.levels import SecurityLevel
from tenantry.passkeys.manager import PasskeyManager
from tenantry.principal import ClientInfo, Principal
from tenantry.sessions.repository import SessionsRepository
from tenantry.sessions.schemas import SessionPolicy
from tenantry.sessions.tokens import tenant_of_id
from tenantry.tenants.manager import TenantRegistry
from tenantry.tenants.status import ActiveTenants
from tenantry.threats.events import SecurityEvents, Severity

if TYPE_CHECKING:  # loaded on first use (numpy, scikit-learn): see reports.py
    from tenantry.sessions.analytics import SessionAnalytics
    from tenantry.sessions.learner import BehaviourLearner

__all__ = [
    "ALL_SESSIONS_TAG",
    "MAX_LIVE_TENANTS",
    "STRONG",
    "SessionParts",
    "cache_key",
    "user_tag",
    "utcnow",
]

#: The cache tag of every cached session of a tenant (its default role changed).
ALL_SESSIONS_TAG = "sessions"
#: Tenants whose live-session count is kept at once (as the request limiter's MAX_TENANTS).
MAX_LIVE_TENANTS: Final = 100_000

#: The levels whose sessions are bound to their device and, for admins, need a passkey.
STRONG = (SecurityLevel.CRITICAL, SecurityLevel.QUANTUM)


def utcnow() -> datetime:
    return datetime.now(UTC)


def cache_key(digest: bytes) -> str:
    """The cache key of the session whose token hashes to ``digest``."""
    return "session:" + digest.hex()


def user_tag(user_id: str) -> str:
    """The cache tag of every cached session of ``user_id`` (in its tenant's namespace)."""
    return "user:" + user_id


class SessionParts(RecordsChanges):
    """Make it with no arguments, or give it the app's parts."""

    #: Tenants whose live-session count is kept (see ``_live``).
    max_live_tenants: int = MAX_LIVE_TENANTS

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
        active: ActiveTenants | None = None,
    ) -> None:
        self._database = database
        self._active = active
        self._audit = audit
        self.cache = cache or CacheManager(l1_bytes=16 * 1024 * 1024)
        self._access = access
        self._passkeys = passkeys
        self.events = events
        self.policy = policy or SessionPolicy()
        self._analytics = analytics
        #: The behaviour learner, once made (reports.py): told of sessions that may be ready.
        self._learner: BehaviourLearner | None = None
        #: Requests validated since the last touch, per (tenant, session): the activity's count.
        #: Validation counts them, its touch records them, revocation drops them.
        self._pending: defaultdict[tuple[str, str], int] = defaultdict(int)
        #: Sessions created per tenant since the last :meth:`take_created` (the service's
        #: sampler reads it into the tenants' ``sessions_created`` series).
        self._created: defaultdict[str, int] = defaultdict(int)
        #: A tenant's cap on its live sessions (the service gives its tier's ``sessions``); None:
        #: no cap but the per-user one.
        self.tenant_limit: Callable[[str], Awaitable[int]] | None = None
        #: Live sessions per tenant as last counted, plus those created here since, and when
        #: counted (time.monotonic()): see ``create_session``. At most :attr:`max_live_tenants`
        #: tenants, the least recently counted dropped first (their next creation counts again).
        self._live: OrderedDict[str, tuple[int, float]] = OrderedDict()
        #: Creations refused by the tenant's cap, per tenant (for metrics and tests).
        self.refused: defaultdict[str, int] = defaultdict(int)
        if access is not None:
            access.listen(self.forget_user)
        self._setup()

    @property
    def counted_tenants(self) -> tuple[str, ...]:
        """The tenants whose live sessions are counted here, the least recently used first."""
        return tuple(self._live)

    def take_created(self) -> dict[str, int]:
        """Sessions created per tenant since the last call (counted in this process)."""
        created, self._created = dict(self._created), defaultdict(int)
        return created

    def _setup(self) -> None:
        """Set up the per-node state of the responsibilities mixed in.

        Each one that keeps state overrides this, calls ``super()._setup()`` and sets its own.
        """

    async def initialize(self) -> None:
        """Resolve the database and the parts made on demand (the documents call this)."""
        db = await self._db()
        if self.events is None:
            self.events = SecurityEvents(db)
        if self._access is None:
            self._access = AccessControl(db)
            self._access.listen(self.forget_user)

    async def forget_user(self, tenant_id: str, user_id: str | None) -> None:
        """Drop every cached session of ``user_id`` (None: of every user of the tenant) on every
        node, since their roles changed: their next validation reads them again. Role changes
        through the :class:`AccessControl` this manager uses call it before they return."""
        with tenant_scope(tenant_id):
            tag = ALL_SESSIONS_TAG if user_id is None else user_tag(user_id)
            await self.cache.invalidate_tags(tag)

    def _notice_learner(self, tenant_id: str) -> None:
        """A session of ``tenant_id`` recorded activity or ended: the learner visits the tenant
        in its next round (a set insertion; nothing is read or written here)."""
        if self._learner is not None:
            self._learner.notice(tenant_id)

    async def _active_tenants(self) -> ActiveTenants:
        """Whether a tenant is active: the app's (shared with its gate), else one on this cache."""
        if self._active is None:
            self._active = ActiveTenants(TenantRegistry(await self._db()), self.cache)
        return self._active

    async def _ceiling(self, principal: Principal) -> frozenset[str] | None:
        """The actions ``principal`` may perform (None: all): a session it mints gets no more."""
        if self._access is None:
            await self.initialize()
        assert self._access is not None  # noqa: S101 - set by initialize
        return self._access.ceiling(principal)

    async def _events(self) -> SecurityEvents:
        if self.events is None:
            await self.initialize()
        assert self.events is not None  # noqa: S101 - set by initialize
        return self.events

    async def _passkey_manager(self) -> PasskeyManager:
        if self._passkeys is None:
            self._passkeys = PasskeyManager(await self._db())
        return self._passkeys

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
            if digests:
                self._notice_learner(tenant_id)
            for digest in digests:
                await self.cache.delete(cache_key(bytes(digest)))
        return digests

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

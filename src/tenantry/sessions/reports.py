"""What a SessionManager reports about sessions: the user's live ones, one's record, its behaviour.

:meth:`SessionReports.get_session_analytics` reads a session's activity and its user's last 30
days, scores it off the event loop with :class:`~tenantry.sessions.analytics.SessionAnalytics`
(imported on first use: it loads numpy and scikit-learn), and records an anomaly as a security
event.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.errors import NotFound
from tenantry.sessions.parts import SessionParts, utcnow
from tenantry.sessions.repository import SessionsRepository
from tenantry.sessions.schemas import SessionInfo
from tenantry.threats.events import Severity

if TYPE_CHECKING:
    from tenantry.sessions.analytics import SessionAnalytics

__all__ = ["SessionReports"]


class SessionReports(SessionParts):
    """Listing sessions, a session's record, and its analytics."""

    def _setup(self) -> None:
        super()._setup()
        self._analytics_lock = asyncio.Lock()

    @property
    def analytics(self) -> SessionAnalytics:
        if self._analytics is None:
            from tenantry.sessions.analytics import SessionAnalytics  # noqa: PLC0415 - numpy/sklearn

            self._analytics = SessionAnalytics()
        return self._analytics

    async def list_sessions(self, tenant_id: str, user_id: str) -> list[SessionInfo]:
        """The user's live sessions, oldest first."""
        validate_tenant_id(tenant_id)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                rows = await SessionsRepository(conn).live_for_user(user_id, utcnow())
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
                    user_id=info.user_id, since=utcnow() - timedelta(days=30)
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

"""What a SessionManager reports about sessions: the user's live ones, one's record, its behaviour.

:meth:`SessionReports.get_session_analytics` reads a session's activity and its user's in the 30
days before it, and scores it, off the event loop, with the tenant's behaviour model (its AI
registry's champion; :class:`~tenantry.sessions.analytics.SessionAnalytics`, imported on first
use: it loads numpy and scikit-learn). It only reads: the model learns in the background, from
each session once (:attr:`SessionReports.learner`, :meth:`SessionReports.learn_behaviour`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from tenantry.ai.registry import MLModelManager
from tenantry.context import tenant_scope, validate_tenant_id
from tenantry.errors import NotFound
from tenantry.sessions.learner import BehaviourLearner, session_inputs, sync_model
from tenantry.sessions.parts import SessionParts, utcnow
from tenantry.sessions.repository import SessionsRepository
from tenantry.sessions.schemas import BehaviourStep, SessionInfo
from tenantry.threats.events import Severity

if TYPE_CHECKING:
    from tenantry.sessions.analytics import SessionAnalytics

__all__ = ["SessionReports"]


class SessionReports(SessionParts):
    """Listing sessions, a session's record, its analytics, and the behaviour learner."""

    @property
    def analytics(self) -> SessionAnalytics:
        if self._analytics is None:
            from tenantry.sessions.analytics import SessionAnalytics  # noqa: PLC0415 - numpy/sklearn

            self._analytics = SessionAnalytics()
        return self._analytics

    @property
    def learner(self) -> BehaviourLearner:
        """This manager's behaviour learner (the app starts it; :meth:`learn_behaviour` runs a
        step of it). Sessions validated or revoked through this manager are noticed by it."""
        if self._learner is None:
            self._learner = BehaviourLearner(
                self._database,
                analytics=lambda: self.analytics,
                registry=MLModelManager(self._database, audit=self._audit),
                on_anomaly=self._anomaly,
            )
        return self._learner

    async def learn_behaviour(self, tenant_id: str) -> BehaviourStep:
        """Learn from ``tenant_id``'s ready sessions now (a batch), and train its model if due:
        what the app's learner does in the background."""
        return await self.learner.learn(tenant_id)

    async def _anomaly(self, tenant_id: str, session_id: str, user_id: str, score: float) -> None:
        await self._event(
            tenant_id,
            "anomaly",
            Severity.HIGH,
            session={"id": session_id, "user": user_id},
            detail={"score": round(score, 4)},
        )

    async def list_sessions(self, tenant_id: str, user_id: str) -> list[SessionInfo]:
        """The user's live sessions, oldest first."""
        validate_tenant_id(tenant_id)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                rows = await SessionsRepository(conn).live_for_user(user_id, utcnow())
        return [SessionInfo.model_validate(dict(r)) for r in rows]

    async def live_totals(self, tenant_id: str) -> tuple[int, int]:
        """(``tenant_id``'s live sessions, its users with one): the dashboard's active users."""
        validate_tenant_id(tenant_id)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_read_transaction() as conn:
                return await SessionsRepository(conn).live_totals(utcnow())

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
        """Behaviour of a session: its features and ``anomaly_score`` in [0, 1], by the tenant's
        stored model (``model_version``; 0: by the rules). Reads only: asking again, on any
        node, gives the same answer until the session's activity or the stored model changes."""
        info = await self.session_info(session_id, tenant_id=tenant_id)
        tenant = self._tenant_of(session_id, tenant_id)
        db, analytics = await self._db(), self.analytics
        with tenant_scope(tenant):
            async with db.tenant_transaction() as conn:
                own, history = await session_inputs(
                    SessionsRepository(conn), session_id, info.user_id, info.created_at
                )
                version = await sync_model(conn, analytics, tenant)
        # Scoring is CPU work: off the event loop (the models are only read there).
        return await asyncio.to_thread(analytics.report, tenant, info, own, history, version)

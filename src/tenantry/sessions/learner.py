"""The behaviour learner: each tenant's training set and model, in PostgreSQL, learned in the
background from sessions taken once each.

A session is *ready* when it ended (revoked, logged out, expired) or recorded
``ready_activities`` activities (validations are recorded at most once a minute, so ~10 minutes
of use by default). :meth:`BehaviourLearner.learn` takes a tenant's ready sessions, a batch at a
time, marking each as taken in the same statement (``sessions.behaviour_seen_at``: never taken
again, on any node), scores them with the tenant's stored model, and adds those that score below
the threshold to the tenant's training set (``behaviour_samples``, one row per session at most,
the newest ``max_samples`` kept). Those at or above it are recorded as ``anomaly`` security
events, once. When the set has ``min_history`` samples and no valid model, or ``refit_every``
samples newer than the model, it trains one off the event loop and stores it in the tenant's AI
registry (:class:`tenantry.ai.MLModelManager`) as the next version of the model
``session_behaviour`` (:mod:`tenantry.sessions.stored`: the file, its SHA-256, metrics,
parameters, the lineage of its samples; audited), and makes it ``champion`` unless another node
made its own champion meanwhile (then the new version stays ``challenger``).

Every node scores with the champion: :func:`sync_model` reads which version it is (one
primary-key read, in the transaction that reads the session) and loads the model again, its
SHA-256 checked, only when that changed. A version moved by hand (``POST
/ai/models/session_behaviour/promote``: a rollback) is followed the same way.

Taking is *at most once*: a node that stops between taking a batch and storing its samples loses
that batch, it never learns a session twice. The app runs :meth:`BehaviourLearner.start`: every
``interval`` seconds a round visits the tenants whose sessions were validated or revoked on this
node since the last one (:meth:`notice`), and every ``sweep_every``-th round every active tenant
(sessions also end by expiring, and on other nodes). A round takes at most ``batch`` sessions of a
tenant and trains it at most once, so a tenant with a flood of sessions waits for the next round
while every other tenant gets its share of this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from tenantry.ai.registry import MLModelManager
from tenantry.context import RESERVED_TENANTS, tenant_scope, validate_tenant_id
from tenantry.db.engine import Database
from tenantry.logging import get_logger
from tenantry.sessions.repository import BehaviourRepository, SessionsRepository
from tenantry.sessions.schemas import BEHAVIOUR_MODEL, BehaviourStep
from tenantry.tenants.manager import TenantRegistry
from tenantry.tenants.rounds import ActiveTenantRounds
from tenantry.tenants.schemas import TenantStatus

if TYPE_CHECKING:  # numpy and scikit-learn, loaded when a tenant has sessions to learn from
    from tenantry.sessions.analytics import SessionAnalytics
    from tenantry.sessions.behaviour import FittedModel

__all__ = [
    "HISTORY",
    "LEARNER",
    "AnomalyListener",
    "BehaviourLearner",
    "session_inputs",
    "sync_model",
]

_log = get_logger("tenantry.sessions")

#: How far back a session's user's activity counts as their usual behaviour.
HISTORY = timedelta(days=30)

#: The actor of the registry changes the learner makes (audited).
LEARNER = "tenantry.sessions.learner"

#: Told of each session the learner found anomalous: (tenant, session, user, score).
AnomalyListener = Callable[[str, str, str, float], Awaitable[None]]


async def session_inputs(
    repo: SessionsRepository, session_id: str, user_id: str, started: datetime
) -> tuple[Sequence[RowMapping], Sequence[RowMapping]]:
    """A session's activity, and its user's in the :data:`HISTORY` before it started: what it
    is scored on, the same whenever and wherever it is scored."""
    own = await repo.activity(session_id=session_id)
    history = await repo.history(user_id, since=started - HISTORY, before=started)
    return own, history


async def sync_model(conn: AsyncConnection, analytics: SessionAnalytics, tenant_id: str) -> int:
    """Make this node score ``tenant_id`` with its registry's champion behaviour model; returns
    the champion's version (0: none). One primary-key read when this node has it already; a
    version whose file does not match its SHA-256 or does not decode is refused (logged) and the
    tenant scored by the rules until a new champion."""
    repo = BehaviourRepository(conn)
    champion = await repo.champion()
    if analytics.version(tenant_id) == champion:
        return champion
    row = await repo.model_file(champion) if champion else None
    if row is None:
        analytics.install(tenant_id, 0, None)
        return 0
    fitted = await asyncio.to_thread(analytics.load, tenant_id, champion, row)
    analytics.install(tenant_id, champion, fitted)
    return champion


def _utcnow() -> datetime:
    return datetime.now(UTC)


class BehaviourLearner(ActiveTenantRounds[BehaviourStep]):
    """Learns each tenant's behaviour model from its sessions; see the module docstring.

    ``analytics`` gives the node's :class:`~tenantry.sessions.analytics.SessionAnalytics` (its
    model's settings, its threshold, and the models this node scores with, which training
    updates); ``on_anomaly`` is told of each anomalous session; ``clock`` is the time sessions
    are checked for expiry against.
    """

    work = "behaviour learning"

    def __init__(
        self,
        database: Database | None = None,
        *,
        analytics: Callable[[], SessionAnalytics],
        registry: MLModelManager | None = None,
        on_anomaly: AnomalyListener | None = None,
        interval: float = 60.0,
        batch: int = 50,
        ready_activities: int = 10,
        min_activities: int = 2,
        sweep_every: int = 30,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if batch < 1 or ready_activities < 1 or min_activities < 1 or sweep_every < 1:
            raise ValueError("batch, ready_activities, min_activities, sweep_every must be >= 1")
        self._database = database
        self._analytics = analytics
        self._registry = registry or MLModelManager(database)
        self._on_anomaly = on_anomaly
        super().__init__(interval=interval)
        self.batch, self.sweep_every = batch, sweep_every
        self.ready_activities, self.min_activities = ready_activities, min_activities
        self.clock = clock

    # -- scheduling (the rounds: tenantry.rounds) -----------------------------------------------

    async def before_round(self, number: int) -> None:
        if number % self.sweep_every == 0:
            await self.sweep()

    async def visit(self, tenant_id: str) -> BehaviourStep:
        return await self.learn(tenant_id)

    def again(self, result: BehaviourStep) -> bool:
        return result.more  # a full batch: more sessions are ready

    # -- one tenant ------------------------------------------------------------------------------

    async def learn(self, tenant_id: str) -> BehaviourStep:
        """One step for ``tenant_id``: take a batch of its ready sessions, learn from those
        that score below the threshold, train and store its model if due. A deleted tenant's
        samples and model are dropped; a tenant that is otherwise not active is left alone."""
        validate_tenant_id(tenant_id)
        db = await self._db()
        status = (await TenantRegistry(db).get(tenant_id)).status
        if status is TenantStatus.DELETED:
            await self.purge(tenant_id)
            return BehaviourStep(tenant_id, purged=True)
        if status is not TenantStatus.ACTIVE or tenant_id in RESERVED_TENANTS:
            return BehaviourStep(tenant_id)
        analytics = self._analytics()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                taken = await BehaviourRepository(conn).take_ready(
                    self.clock(), ready_activities=self.ready_activities, limit=self.batch
                )
            learned, anomalous, too_short = (
                await self._learn_taken(db, analytics, tenant_id, taken) if taken else (0, 0, 0)
            )
            version, trained, samples = await self._train_if_due(db, analytics, tenant_id)
        return BehaviourStep(
            tenant_id,
            taken=len(taken),
            learned=learned,
            anomalous=anomalous,
            too_short=too_short,
            samples=samples,
            model_version=version,
            trained=trained,
            more=len(taken) == self.batch,
        )

    async def purge(self, tenant_id: str) -> None:
        """Drop ``tenant_id``'s training set and model (a deleted tenant's), on this node too."""
        validate_tenant_id(tenant_id)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                await BehaviourRepository(conn).purge()
        self._analytics().forget(tenant_id)

    async def _learn_taken(
        self,
        db: Database,
        analytics: SessionAnalytics,
        tenant_id: str,
        taken: Sequence[RowMapping],
    ) -> tuple[int, int, int]:
        """(learned, anomalous, too short) of the sessions ``taken``."""
        async with db.tenant_transaction() as conn:
            repo = SessionsRepository(conn)
            inputs = [
                (row, *await session_inputs(repo, row.session_id, row.user_id, row.created_at))
                for row in taken
            ]
            await sync_model(conn, analytics, tenant_id)
        decided = await asyncio.to_thread(self._decide, analytics, tenant_id, inputs)
        learned = [d for d in decided if d["verdict"] == "learned"]
        async with db.tenant_transaction() as conn:
            repo_b = BehaviourRepository(conn)
            await repo_b.add_samples(
                [{k: d[k] for k in ("session_id", "features", "score")} for d in learned]
            )
            await repo_b.keep_newest(analytics.model.max_samples)
        anomalous = [d for d in decided if d["verdict"] == "anomalous"]
        if self._on_anomaly is not None:
            for d in anomalous:
                await self._on_anomaly(tenant_id, d["session_id"], d["user_id"], d["score"])
        return len(learned), len(anomalous), len(decided) - len(learned) - len(anomalous)

    def _decide(
        self,
        analytics: SessionAnalytics,
        tenant_id: str,
        inputs: list[tuple[RowMapping, Sequence[RowMapping], Sequence[RowMapping]]],
    ) -> list[dict[str, Any]]:
        """Per taken session: too short, anomalous, or learned (with its features)."""
        out: list[dict[str, Any]] = []
        for row, own, history in inputs:
            decision: dict[str, Any] = {"session_id": row.session_id, "user_id": row.user_id}
            if len(own) < self.min_activities:
                out.append(decision | {"verdict": "too_short"})
                continue
            feats, score = analytics.assess(tenant_id, row.session_id, own, history)
            verdict = "anomalous" if score.value >= analytics.threshold else "learned"
            vector = list(feats.vector())
            out.append(decision | {"verdict": verdict, "features": vector, "score": score.value})
        return out

    async def _train_if_due(
        self, db: Database, analytics: SessionAnalytics, tenant_id: str
    ) -> tuple[int, bool, int]:
        """(stored version, whether this call stored it, training set size)."""
        from tenantry.sessions import stored  # noqa: PLC0415 - numpy/sklearn
        from tenantry.sessions.behaviour import FEATURE_NAMES  # noqa: PLC0415 - numpy/sklearn

        model, dimensions = analytics.model, len(FEATURE_NAMES)
        async with db.tenant_transaction() as conn:
            version = await sync_model(conn, analytics, tenant_id)
            repo = BehaviourRepository(conn)
            through = await repo.through(version) if version else 0
            total, newer = await repo.sample_counts(dimensions, through)
        current = version > 0 and analytics.usable(tenant_id)  # 0 or refused: train now
        if total < model.min_history or (current and newer < model.refit_every):
            return version, False, total
        async with db.tenant_transaction() as conn:
            rows = await BehaviourRepository(conn).samples(dimensions)
        if len(rows) < model.min_history:
            return version, False, len(rows)
        vectors = [list(r.features) for r in rows]
        fitted: FittedModel = await asyncio.to_thread(model.train, tenant_id, vectors)
        trained, lineage = await asyncio.to_thread(
            stored.trained, fitted, rows, model, model.tenant_seed(tenant_id)
        )
        saved, promoted = await self._registry.add_version(
            tenant_id, BEHAVIOUR_MODEL, BEHAVIOUR_MODEL, trained, lineage, actor=LEARNER,
            promote_over=version or None,
        )  # fmt: skip
        if not promoted:  # another node made its own champion meanwhile: the next sync reads it
            _log.info("behaviour model left as challenger", tenant=tenant_id, version=saved)
            return version, False, len(rows)
        analytics.install(tenant_id, saved, fitted)
        _log.info("behaviour model trained", tenant=tenant_id, version=saved, samples=len(rows))
        return saved, True, len(rows)

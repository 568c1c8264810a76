"""Session analytics: activity rows -> features -> the tenant's behaviour model -> a score.

:class:`SessionAnalytics` scores only: it never learns. The models it scores with are the
champions of the tenants' AI registries (:class:`~tenantry.sessions.learner.BehaviourLearner`
trains and stores them), each kept on this node with the registry version it was loaded from,
for the ``max_tenants`` tenants scored most recently.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy.engine import RowMapping

from tenantry.errors import ModelFileRejected
from tenantry.logging import get_logger
from tenantry.sessions.behaviour import (
    DEFAULT_THRESHOLD,
    Activity,
    BehaviourModel,
    FittedModel,
    Score,
    SessionFeatures,
    features,
)
from tenantry.sessions.schemas import BEHAVIOUR_MODEL, SessionInfo

__all__ = ["SessionAnalytics"]

_log = get_logger("tenantry.sessions")


def _activity(row: RowMapping) -> Activity:
    return Activity(
        at=row.occurred_at,
        kind=row.kind,
        ip=row.ip,
        user_agent=row.user_agent,
        device_id=row.device_id,
        requests=int(row.requests),
    )


class SessionAnalytics:
    """Scores sessions with their tenant's stored model (the rules until it has one).

    ``model`` scores (its ``min_history``, ``refit_every``, ``max_samples`` and ``trees`` are
    also what this node's learner trains with); ``threshold``: a session scoring at or above it is
    an ``anomaly``, and is never learned from. Not thread-safe: :meth:`install` and
    :meth:`version` run on the event loop, :meth:`load`, :meth:`assess` and :meth:`report` may
    run in a thread.
    """

    def __init__(
        self,
        model: BehaviourModel | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        *,
        max_tenants: int = 128,
    ) -> None:
        if max_tenants < 1:
            raise ValueError("max_tenants must be at least 1")
        self.model = model or BehaviourModel()
        self.threshold = threshold
        self.max_tenants = max_tenants
        #: tenant -> the stored version this node scores it with (0: none stored)
        self._versions: OrderedDict[str, int] = OrderedDict()

    def version(self, tenant_id: str) -> int | None:
        """The stored version this node scores ``tenant_id`` with: 0 when none is stored, None
        when this node has not read it (or forgot it: the least recently used go first)."""
        version = self._versions.get(tenant_id)
        if version is not None:
            self._versions.move_to_end(tenant_id)
        return version

    def usable(self, tenant_id: str) -> bool:
        """Whether this node scores ``tenant_id`` with a model (not the rules)."""
        return self.model.fitted(tenant_id) is not None

    def install(self, tenant_id: str, version: int, fitted: FittedModel | None) -> None:
        """Score ``tenant_id`` with ``fitted``, stored as ``version`` (None: with the rules)."""
        self.model.install(tenant_id, fitted)
        self._versions[tenant_id] = version
        self._versions.move_to_end(tenant_id)
        while len(self._versions) > self.max_tenants:
            oldest, _ = self._versions.popitem(last=False)
            self.model.install(oldest, None)

    def forget(self, tenant_id: str) -> None:
        self._versions.pop(tenant_id, None)
        self.model.install(tenant_id, None)

    @staticmethod
    def load(tenant_id: str, version: int, stored: RowMapping) -> FittedModel | None:
        """The registry's ``version`` of the tenant's behaviour model (``stored``: its
        ``model_type``, ``file_format``, ``file`` and ``sha256``), or None (logged) when it is
        refused: a file that does not match its SHA-256, or that is not a behaviour model. The
        tenant is then scored by the rules until its learner stores a valid version. Nothing
        stored is ever executed."""
        from tenantry.sessions.stored import SessionBehaviourKind  # noqa: PLC0415 - registers it

        try:
            if stored.model_type != BEHAVIOUR_MODEL:
                raise ModelFileRejected(f"the model is a {stored.model_type}")
            fitted: FittedModel = SessionBehaviourKind().load(
                bytes(stored.file), stored.file_format, bytes(stored.sha256)
            )
        except ModelFileRejected as exc:
            _log.warning(
                "stored behaviour model refused", tenant=tenant_id, version=version, reason=str(exc)
            )
            return None
        return fitted

    def assess(
        self, tenant_id: str, session_id: str, own: Sequence[RowMapping],
        history: Sequence[RowMapping],
    ) -> tuple[SessionFeatures, Score]:  # fmt: skip
        """The features of a session (its activity ``own``, its user's earlier ``history``) and
        its score by the tenant's model. ``own`` must not be empty."""
        session = [_activity(r) for r in own]
        earlier = [_activity(r) for r in history if r.session_id != session_id]
        feats = features(session, earlier)
        return feats, self.model.score(tenant_id, feats)

    def report(
        self,
        tenant_id: str,
        info: SessionInfo,
        own: Sequence[RowMapping],
        history: Sequence[RowMapping],
        version: int = 0,
    ) -> dict[str, Any]:
        """The session's score and features; ``version``: that of the tenant's model as synced
        (``model_version`` in the report when the model scored, 0 for the rules)."""
        feats, score = self.assess(tenant_id, info.session_id, own, history)
        return {
            "session_id": info.session_id,
            "user_id": info.user_id,
            "anomaly_score": round(score.value, 4),
            "anomaly": score.value >= self.threshold,
            "method": score.method,
            "model_version": version if score.method == "model" else 0,
            "reasons": list(score.reasons),
            "features": {k: round(v, 4) for k, v in asdict(feats).items()},
            "activity_records": len(own),
            "requests": sum(int(r.requests) for r in own),
        }

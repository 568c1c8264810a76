"""Session analytics: activity rows -> features -> the tenant's behaviour model -> a report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy.engine import RowMapping

from tenantry.sessions.behaviour import DEFAULT_THRESHOLD, Activity, BehaviourModel, features
from tenantry.sessions.schemas import SessionInfo

__all__ = ["SessionAnalytics"]


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
    """Scores sessions with a per-tenant :class:`BehaviourModel` (rules until it has history).

    Every scored session that does not look anomalous is also a training sample for its tenant.
    """

    def __init__(self, model: BehaviourModel | None = None, threshold: float = DEFAULT_THRESHOLD):
        self.model = model or BehaviourModel()
        self.threshold = threshold

    def report(
        self,
        tenant_id: str,
        info: SessionInfo,
        own: Sequence[RowMapping],
        history: Sequence[RowMapping],
    ) -> dict[str, Any]:
        session = [_activity(r) for r in own]
        earlier = [_activity(r) for r in history if r.session_id != info.session_id]
        feats = features(session, earlier)
        score = self.model.score(tenant_id, feats)
        anomaly = score.value >= self.threshold
        if not anomaly:
            self.model.observe(tenant_id, feats)
        return {
            "session_id": info.session_id,
            "user_id": info.user_id,
            "anomaly_score": round(score.value, 4),
            "anomaly": anomaly,
            "method": score.method,
            "reasons": list(score.reasons),
            "features": {k: round(v, 4) for k, v in asdict(feats).items()},
            "activity_records": len(session),
            "requests": sum(a.requests for a in session),
        }

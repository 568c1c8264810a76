"""Sessions and API keys: the documents' SessionManager, its factory and enums, and the
behaviour model's learner. ``SessionAnalytics`` and ``BehaviourModel`` load numpy and
scikit-learn, so they are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tenantry.levels import SecurityLevel
from tenantry.principal import ClientInfo
from tenantry.sessions.api_keys import ApiKeys
from tenantry.sessions.learner import BehaviourLearner
from tenantry.sessions.manager import SessionManager, SessionManagerFactory
from tenantry.sessions.schemas import BehaviourStep, SessionPolicy, SessionType

if TYPE_CHECKING:
    from tenantry.sessions.analytics import SessionAnalytics
    from tenantry.sessions.behaviour import BehaviourModel

__all__ = [
    "ApiKeys",
    "BehaviourLearner",
    "BehaviourModel",
    "BehaviourStep",
    "ClientInfo",
    "SecurityLevel",
    "SessionAnalytics",
    "SessionManager",
    "SessionManagerFactory",
    "SessionPolicy",
    "SessionType",
]


def __getattr__(name: str) -> Any:
    if name == "SessionAnalytics":
        from tenantry.sessions.analytics import SessionAnalytics  # noqa: PLC0415 - numpy/sklearn

        return SessionAnalytics
    if name == "BehaviourModel":
        from tenantry.sessions.behaviour import BehaviourModel  # noqa: PLC0415 - numpy/sklearn

        return BehaviourModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Sessions and API keys: the documents' SessionManager, its factory and enums."""

from tenantry.sessions.api_keys import ApiKeys
from tenantry.sessions.manager import SessionManager, SessionManagerFactory
from tenantry.sessions.schemas import ClientInfo, SecurityLevel, SessionPolicy, SessionType

__all__ = [
    "ApiKeys",
    "ClientInfo",
    "SecurityLevel",
    "SessionManager",
    "SessionManagerFactory",
    "SessionPolicy",
    "SessionType",
]

"""Sessions and API keys: the documents' SessionManager, its factory and enums."""

from tenantry.levels import SecurityLevel
from tenantry.principal import ClientInfo
from tenantry.sessions.api_keys import ApiKeys
from tenantry.sessions.manager import SessionManager, SessionManagerFactory
from tenantry.sessions.schemas import SessionPolicy, SessionType

__all__ = [
    "ApiKeys",
    "ClientInfo",
    "SecurityLevel",
    "SessionManager",
    "SessionManagerFactory",
    "SessionPolicy",
    "SessionType",
]

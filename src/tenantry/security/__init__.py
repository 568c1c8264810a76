"""The documents' security facades: :class:`SecurityManager` and :class:`ComplianceManager`.

They combine the security domains: tenant keys (:mod:`tenantry.keys`), the audit log
(:mod:`tenantry.audit`) and the threat analysis over security events (:mod:`tenantry.threats`).
"""

from tenantry.security.manager import ComplianceManager, SecurityManager
from tenantry.threats import SecurityEvent, SecurityEvents, Severity

__all__ = ["ComplianceManager", "SecurityEvent", "SecurityEvents", "SecurityManager", "Severity"]

"""Security: keys and encryption, the audit log, threat analysis, security events."""

from tenantry.security.events import SecurityEvent, SecurityEvents, Severity
from tenantry.security.manager import ComplianceManager, SecurityManager

__all__ = ["ComplianceManager", "SecurityEvent", "SecurityEvents", "SecurityManager", "Severity"]

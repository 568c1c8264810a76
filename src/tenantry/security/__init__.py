"""Security: security events (the threat analysis and audit log build on them)."""

from tenantry.security.events import SecurityEvent, SecurityEvents, Severity

__all__ = ["SecurityEvent", "SecurityEvents", "Severity"]

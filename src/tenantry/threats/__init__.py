"""Security events and the threat analysis.

The other managers record what may be an attack as :class:`SecurityEvents` (failed
validations, foreign-tenant probes, revoked-token use, new devices, anomalies);
:class:`ThreatAnalyzer` scores a tenant's window of them into threat levels per user, IP and
tenant, against the tenant's own baseline; a tenant's ``threat_window`` detector in its AI
registry, when promoted, scores the window (:class:`WindowDetector`).
"""

from tenantry.threats.detector import DETECTOR_MODEL, WindowDetector
from tenantry.threats.events import SecurityEvent, SecurityEvents, Severity, on_events
from tenantry.threats.manager import DEFAULT_RULES, MAX_WINDOW, Rule, Threat, ThreatAnalyzer
from tenantry.threats.schemas import Burst, Signal, SubjectThreat, ThreatLevel, ThreatReport
from tenantry.threats.watch import ThreatWatch

__all__ = [
    "DEFAULT_RULES",
    "DETECTOR_MODEL",
    "MAX_WINDOW",
    "Burst",
    "Rule",
    "SecurityEvent",
    "SecurityEvents",
    "Severity",
    "Signal",
    "SubjectThreat",
    "Threat",
    "ThreatAnalyzer",
    "ThreatLevel",
    "ThreatReport",
    "ThreatWatch",
    "WindowDetector",
    "on_events",
]

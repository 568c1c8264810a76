"""Security levels: how strongly a tenant's sessions and keys are protected.

A session is opened at a level (it sets its expiry and whether an admin needs a passkey step-up);
a tenant's level (its setting ``security_level``, read by the key hierarchy) decides whether its
KEKs are wrapped with hybrid X25519 + ML-KEM-768 (``quantum``). Sessions, passkeys, keys and the
tenant settings all read it, so it lives at the foot of the package.
"""

from __future__ import annotations

from enum import StrEnum

from tenantry.errors import InvalidInput

__all__ = ["SECURITY_LEVEL_SETTING", "SecurityLevel", "parse_level"]


class SecurityLevel(StrEnum):
    HIGH = "high"
    CRITICAL = "critical"
    QUANTUM = "quantum"


#: The tenant setting that holds a tenant's level (validated when it is written).
SECURITY_LEVEL_SETTING = "security_level"
_VALUES = tuple(level.value for level in SecurityLevel)
_ALLOWED = ", ".join(_VALUES)


def parse_level(value: object, *, what: str = "security level") -> SecurityLevel:
    """``value`` as a :class:`SecurityLevel`, or :class:`InvalidInput` naming what is allowed."""
    if isinstance(value, str) and value in _VALUES:
        return SecurityLevel(value)
    raise InvalidInput(f"{what} {InvalidInput.excerpt(value)} is invalid: use one of {_ALLOWED}")

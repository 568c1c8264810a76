"""WebAuthn passkeys: registration and authentication ceremonies, credentials per tenant."""

from tenantry.passkeys.manager import COUNTER_REGRESSION_EVENT, PasskeyManager
from tenantry.passkeys.schemas import PasskeyAssertion, PasskeyCredential
from tenantry.passkeys.stepup import (
    DEFAULT_STEP_UP_MAX_AGE,
    STEP_UP_LEVELS,
    STEP_UP_SESSION_TYPES,
    assertion_is_fresh,
    step_up_required,
)

__all__ = [
    "COUNTER_REGRESSION_EVENT",
    "DEFAULT_STEP_UP_MAX_AGE",
    "STEP_UP_LEVELS",
    "STEP_UP_SESSION_TYPES",
    "PasskeyAssertion",
    "PasskeyCredential",
    "PasskeyManager",
    "assertion_is_fresh",
    "step_up_required",
]

"""Step-up: when a session needs a passkey assertion, and whether the one it has is fresh.

ADMIN sessions at the CRITICAL or QUANTUM security level need a passkey assertion when they are
created (:func:`step_up_required`). Before an admin action, every session (whatever its type and
level: its powers come from the roles it carries) needs a fresh one (a *step-up*) once the last
is older than ``max_age``, or when it never had one. The session manager stores the time of the
last verified assertion (``Principal.step_up_at``) and asks :func:`assertion_is_fresh`; when it
is not, it raises :class:`~tenantry.errors.StepUpRequired` and the client runs the
authentication ceremony again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tenantry.errors import InvalidInput

__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_STEP_UP_MAX_AGE",
    "STEP_UP_LEVELS",
    "STEP_UP_SESSION_TYPES",
    "assertion_is_fresh",
    "step_up_required",
]

#: How long a passkey assertion counts as fresh for admin actions, unless configured otherwise.
DEFAULT_STEP_UP_MAX_AGE = timedelta(minutes=5)
#: The security levels (``Settings.security_level`` values) at which admin sessions need a passkey
#: to be created.
STEP_UP_LEVELS = frozenset({"critical", "quantum"})
#: The session types that need them.
STEP_UP_SESSION_TYPES = frozenset({"admin"})
#: An assertion time this far in the future (another node's clock) still counts.
CLOCK_SKEW = timedelta(seconds=5)


def step_up_required(session_type: str | None, security_level: str | None) -> bool:
    """True when a session of this type at this level needs a passkey assertion to be created."""
    return (session_type or "").lower() in STEP_UP_SESSION_TYPES and (
        security_level or ""
    ).lower() in STEP_UP_LEVELS


def assertion_is_fresh(step_up_at: datetime | None, max_age: timedelta, now: datetime) -> bool:
    """True when a passkey assertion verified at ``step_up_at`` is at most ``max_age`` old.

    ``None`` (no assertion yet) is never fresh, nor is a time further in the future than
    :data:`CLOCK_SKEW`. Both datetimes must be timezone-aware.
    """
    if max_age < timedelta(0):
        raise InvalidInput("max_age must not be negative")
    if now.tzinfo is None or (step_up_at is not None and step_up_at.tzinfo is None):
        raise InvalidInput("step-up times must be timezone-aware datetimes")
    if step_up_at is None:
        return False
    age = now - step_up_at
    return -CLOCK_SKEW <= age <= max_age

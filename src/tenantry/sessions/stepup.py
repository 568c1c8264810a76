"""Admin step-up: a fresh passkey assertion recorded on a session, and when one is needed.

Every session needs an assertion no older than the policy's ``step_up_max_age`` before an
admin action (:meth:`SessionStepUp.needs_step_up`), whatever its type and level say: the powers
come from the roles the session carries, so the step-up is decided by the action, not the label.
:meth:`SessionStepUp.step_up` verifies one for the session of a token and records it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tenantry.context import tenant_scope
from tenantry.passkeys.stepup import assertion_is_fresh
from tenantry.principal import ClientInfo, Principal, PrincipalKind
from tenantry.sessions.parts import cache_key, utcnow
from tenantry.sessions.repository import SessionsRepository
from tenantry.sessions.tokens import hash_token
from tenantry.sessions.validation import SessionValidation

__all__ = ["SessionStepUp"]


class SessionStepUp(SessionValidation):
    """Step-up of admin sessions (on validation: the session is the token's)."""

    async def step_up(
        self,
        token: str,
        challenge_id: str,
        credential: dict[str, Any] | str,
        *,
        client: ClientInfo | None = None,
    ) -> None:
        """Record a fresh passkey assertion on the session of ``token`` (admin step-up).

        ``client``: the caller's, as for :meth:`validate`; a session bound to a device (CRITICAL,
        QUANTUM) steps up only from that device, and another one revokes it.
        """
        principal = await self.validate(token, client=client)
        assert principal.session_id is not None  # noqa: S101 - sessions have ids
        passkeys = await self._passkey_manager()
        await passkeys.verify_authentication(
            principal.tenant_id,
            principal.principal_id,
            challenge_id,
            credential,
            session_id=principal.session_id,
        )
        now = utcnow()
        db, trail = await self._db(), await self._trail(principal.tenant_id)
        with tenant_scope(principal.tenant_id):
            async with db.tenant_transaction() as conn:
                await SessionsRepository(conn).set_step_up(principal.session_id, now)
                await trail.record(
                    principal.tenant_id,
                    "session.step_up",
                    f"session:{principal.session_id}",
                    actor=principal.principal_id,
                )
            await self.cache.delete(cache_key(hash_token(token)))

    def needs_step_up(self, principal: Principal, now: datetime | None = None) -> bool:
        """Whether an admin action by ``principal`` needs a fresh passkey assertion first.

        A session does unless its last assertion is fresh, whatever its type and level label
        (a USER session of an admin holds admin powers too). API keys and the service token are
        not interactive: their holder proved itself when it was issued.
        """
        if principal.kind is not PrincipalKind.SESSION:
            return False
        return not assertion_is_fresh(
            principal.step_up_at, self.policy.step_up_max_age, now or utcnow()
        )

"""PasskeyManager: WebAuthn registration and authentication, credentials per tenant and user.

Each ceremony has two calls: ``*_options`` stores a random challenge (single use, expiring after
``challenge_ttl`` seconds) and returns the options for the browser; ``verify_*`` takes the
browser's ``PublicKeyCredential.toJSON()`` and checks it.

On failure nothing changes, with one exception: the challenge is consumed by the first
``verify_*`` call that names it, whatever the outcome, so a response can never be tried twice
against the same challenge (the client asks for new options). A body that is not a credential
at all is refused with :class:`~tenantry.errors.InvalidInput` before the challenge is touched.
Every refused verification raises :class:`~tenantry.errors.AuthenticationError`; a sign counter
that did not increase on a correctly signed assertion (a cloned authenticator) is also recorded
as a ``passkey_counter_regression`` security event.

A registered, used (its sign counter advanced) or deleted passkey writes ``passkey.register``,
``passkey.authenticate`` or ``passkey.delete`` to the tenant's audit log, in the transaction of
the change; the actor of the first two is the user who performed the ceremony.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import RowMapping
from webauthn.helpers import bytes_to_base64url

from tenantry.config import load_settings
from tenantry.context import tenant_scope
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import (
    AuthenticationError,
    Conflict,
    InvalidInput,
    NotFound,
    ReferenceMissing,
    TenantNotFound,
)
from tenantry.passkeys import ceremony
from tenantry.passkeys.ceremony import (
    check_challenge,
    require_challenge_id,
    require_text,
    utcnow,
)
from tenantry.passkeys.repository import ChallengesRepository, CredentialsRepository
from tenantry.passkeys.schemas import PasskeyAssertion, PasskeyCredential
from tenantry.threats.events import SecurityEvents, Severity

__all__ = ["COUNTER_REGRESSION_EVENT", "PasskeyManager"]

COUNTER_REGRESSION_EVENT = "passkey_counter_regression"
_REGISTER, _AUTHENTICATE = "register", "authenticate"


def _credential(row: RowMapping) -> PasskeyCredential:
    values = dict(row)
    values["credential_id"] = bytes_to_base64url(bytes(row["credential_id"]))
    values["transports"] = list(row["transports"] or [])
    values.pop("public_key", None)
    return PasskeyCredential.model_validate(values)


class PasskeyManager(RecordsChanges):
    """WebAuthn passkeys for the users of every tenant, behind row-level security."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        rp_id: str | None = None,
        rp_name: str = "tenantry",
        origin: str | None = None,
        challenge_ttl: float = 300,
        audit: ChangeLog | None = None,
    ) -> None:
        if rp_id is None or origin is None:
            settings = load_settings()
            rp_id = rp_id or settings.webauthn_rp_id
            origin = origin or settings.webauthn_origin
        if not rp_id or not rp_name or not origin.startswith(("https://", "http://")):
            raise InvalidInput("rp_id and rp_name must be set, origin must be an http(s) URL")
        if not 0 < challenge_ttl <= 86400:
            raise InvalidInput("challenge_ttl must be between 0 and 86400 seconds")
        self._database = database
        self._audit = audit
        self.rp_id, self.rp_name, self.origin = rp_id, rp_name, origin
        self.challenge_ttl = float(challenge_ttl)

    # -- options -------------------------------------------------------------------------------

    async def _issue(
        self, tenant_id: str, user_id: str, purpose: str, session_id: str | None
    ) -> tuple[str, bytes, list[RowMapping]]:
        """Store a new challenge; return its id, its bytes and the user's credentials.

        Authentication needs at least one credential: without one, nothing is stored.
        """
        challenge_id, challenge = secrets.token_urlsafe(24), secrets.token_bytes(32)
        now = utcnow()
        db = await self._db()
        try:
            with tenant_scope(tenant_id):
                async with db.tenant_transaction() as conn:
                    owned = list(await CredentialsRepository(conn).list_for_user(user_id))
                    if purpose == _AUTHENTICATE and not owned:
                        raise NotFound(f"user {user_id!r} has no passkey")
                    challenges = ChallengesRepository(conn)
                    await challenges.purge_expired(now)
                    await challenges.add(
                        challenge_id=challenge_id,
                        user_id=user_id,
                        purpose=purpose,
                        challenge=challenge,
                        session_id=session_id,
                        expires_at=now + timedelta(seconds=self.challenge_ttl),
                    )
        except ReferenceMissing:
            raise TenantNotFound(f"tenant {tenant_id!r} does not exist") from None
        return challenge_id, challenge, owned

    @property
    def _timeout_ms(self) -> int:
        return int(min(self.challenge_ttl, 600) * 1000)

    async def registration_options(
        self, tenant_id: str, user_id: str, user_name: str, *, display_name: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Options for ``navigator.credentials.create()``; the user's passkeys are excluded."""
        require_text("user_id", user_id)
        require_text("user_name", user_name)
        if display_name is not None:
            require_text("display_name", display_name)
        challenge_id, challenge, owned = await self._issue(tenant_id, user_id, _REGISTER, None)
        options = ceremony.creation_options(
            rp_id=self.rp_id,
            rp_name=self.rp_name,
            handle=ceremony.user_handle(tenant_id, user_id),
            user_name=user_name,
            display_name=display_name or user_name,
            challenge=challenge,
            exclude=[ceremony.descriptor(r) for r in owned],
            timeout_ms=self._timeout_ms,
        )
        return challenge_id, options

    async def authentication_options(
        self, tenant_id: str, user_id: str, *, session_id: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Options for ``navigator.credentials.get()``, allowing only the user's passkeys.

        ``session_id`` binds the challenge to a session (step-up): :meth:`verify_authentication`
        then accepts it only with the same ``session_id``.
        """
        require_text("user_id", user_id)
        challenge_id, challenge, owned = await self._issue(
            tenant_id, user_id, _AUTHENTICATE, session_id
        )
        options = ceremony.request_options(
            rp_id=self.rp_id,
            challenge=challenge,
            allow=[ceremony.descriptor(r) for r in owned],
            timeout_ms=self._timeout_ms,
        )
        return challenge_id, options

    # -- verification --------------------------------------------------------------------------

    async def verify_registration(
        self, tenant_id: str, user_id: str, challenge_id: str, credential: dict[str, Any] | str
    ) -> PasskeyCredential:
        """Verify the browser's attestation and store the new passkey for the user."""
        require_text("user_id", user_id)
        require_challenge_id(challenge_id)
        parsed = ceremony.parse_registration(credential)
        db, trail = await self._db(), await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                taken = await ChallengesRepository(conn).take(challenge_id, user_id, _REGISTER)
            challenge = check_challenge(taken, None)
            verified = ceremony.check_registration(
                parsed, challenge=challenge, rp_id=self.rp_id, origin=self.origin
            )
            transports = sorted({t.value for t in parsed.response.transports or []})
            async with db.tenant_transaction() as conn:
                row = await CredentialsRepository(conn).add(
                    credential_id=verified.credential_id,
                    user_id=user_id,
                    public_key=verified.credential_public_key,
                    sign_count=verified.sign_count,
                    transports=transports,
                    aaguid=verified.aaguid,
                )
                if row is not None:
                    await trail.record(
                        tenant_id,
                        "passkey.register",
                        f"passkey:{bytes_to_base64url(verified.credential_id)}",
                        actor=user_id,
                        detail={"user": user_id, "aaguid": str(verified.aaguid)},
                    )
        if row is None:
            raise Conflict("this passkey is registered already")
        return _credential(row)

    async def verify_authentication(
        self,
        tenant_id: str,
        user_id: str,
        challenge_id: str,
        credential: dict[str, Any] | str,
        *,
        session_id: str | None = None,
    ) -> PasskeyAssertion:
        """Verify the browser's assertion: the user proved possession of one of their passkeys."""
        require_text("user_id", user_id)
        require_challenge_id(challenge_id)
        parsed = ceremony.parse_authentication(credential)
        credential_id = bytes(parsed.raw_id)
        db, trail = await self._db(), await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                taken = await ChallengesRepository(conn).take(challenge_id, user_id, _AUTHENTICATE)
                stored = await CredentialsRepository(conn).get(credential_id)
            challenge = check_challenge(taken, session_id)
            if stored is None or stored["user_id"] != user_id:
                # The same answer for "no such passkey" and "another user's passkey".
                raise AuthenticationError("this passkey is not registered for this user")
            handle = parsed.response.user_handle
            if handle is not None and handle != ceremony.user_handle(tenant_id, user_id):
                raise AuthenticationError("the assertion's user handle is not this user's")
            verified = ceremony.check_authentication(
                parsed,
                challenge=challenge,
                rp_id=self.rp_id,
                origin=self.origin,
                public_key=bytes(stored["public_key"]),
            )
            new_count, old_count = verified.new_sign_count, int(stored["sign_count"])
            advanced = False
            if new_count > old_count or new_count == old_count == 0:
                async with db.tenant_transaction() as conn:
                    advanced = await CredentialsRepository(conn).advance_counter(
                        credential_id, old_count, new_count
                    )
                    if advanced:
                        await trail.record(
                            tenant_id,
                            "passkey.authenticate",
                            f"passkey:{bytes_to_base64url(credential_id)}",
                            actor=user_id,
                            detail={"user": user_id, "session": session_id},
                        )
        if not advanced:
            await self._counter_regression(
                tenant_id, user_id, session_id, credential_id, (old_count, new_count)
            )
        return PasskeyAssertion(
            credential_id=bytes_to_base64url(credential_id),
            user_id=user_id,
            tenant_id=tenant_id,
            verified_at=utcnow(),
            new_sign_count=new_count,
        )

    async def _counter_regression(
        self,
        tenant_id: str,
        user_id: str,
        session_id: str | None,
        credential_id: bytes,
        counts: tuple[int, int],
    ) -> None:
        stored, presented = counts
        await SecurityEvents(await self._db()).record(
            tenant_id,
            COUNTER_REGRESSION_EVENT,
            severity=Severity.HIGH,
            principal_id=user_id,
            session_id=session_id,
            detail={
                "credential_id": bytes_to_base64url(credential_id),
                "stored_sign_count": stored,
                "presented_sign_count": presented,
            },
        )
        raise AuthenticationError(
            f"passkey refused: its sign counter did not increase ({presented} after {stored}); "
            "the authenticator may have been cloned"
        )

    # -- credentials ---------------------------------------------------------------------------

    async def list_credentials(self, tenant_id: str, user_id: str) -> list[PasskeyCredential]:
        require_text("user_id", user_id)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                rows = await CredentialsRepository(conn).list_for_user(user_id)
        return [_credential(r) for r in rows]

    async def delete_credential(
        self, tenant_id: str, user_id: str, credential_id: str, *, actor: str | None = None
    ) -> None:
        """Remove one of the user's passkeys (``credential_id`` as base64url)."""
        require_text("user_id", user_id)
        raw = ceremony.decode_credential_id(credential_id)
        db, trail = await self._db(), await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                deleted = await CredentialsRepository(conn).delete(raw, user_id)
                if deleted:
                    resource = f"passkey:{bytes_to_base64url(raw)}"
                    detail = {"user": user_id}
                    await trail.record(
                        tenant_id, "passkey.delete", resource, actor=actor, detail=detail
                    )
        if not deleted:
            raise NotFound("no such passkey for this user")

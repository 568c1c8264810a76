"""Input and output shapes of the passkeys domain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

__all__ = [
    "CHALLENGE_ID_PATTERN",
    "USER_ID_MAX",
    "AuthenticationOptionsRequest",
    "AuthenticationVerifyRequest",
    "CeremonyOptions",
    "PasskeyAssertion",
    "PasskeyCredential",
    "RegistrationOptionsRequest",
    "RegistrationVerifyRequest",
]

#: Challenge ids are ``secrets.token_urlsafe(24)``: 32 characters of base64url.
CHALLENGE_ID_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
USER_ID_MAX = 256

UserId = Annotated[str, Field(min_length=1, max_length=USER_ID_MAX)]
ChallengeId = Annotated[str, Field(pattern=CHALLENGE_ID_PATTERN)]


class PasskeyCredential(BaseModel):
    """A registered passkey, without its public key. ``credential_id`` is base64url."""

    model_config = ConfigDict(frozen=True)

    credential_id: str
    user_id: str
    sign_count: int
    transports: list[str]
    aaguid: str | None
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class PasskeyAssertion:
    """A verified authentication ceremony: who proved possession of which passkey, and when."""

    credential_id: str  # base64url
    user_id: str
    tenant_id: str
    verified_at: datetime
    new_sign_count: int


class CeremonyOptions(BaseModel):
    """What the browser needs: pass ``options`` to ``navigator.credentials.create()/get()``
    (after ``PublicKeyCredential.parseCreationOptionsFromJSON`` / ``parseRequestOptionsFromJSON``)
    and send ``challenge_id`` back with the result."""

    challenge_id: str
    options: dict[str, Any]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Whose passkeys: required for the service token, optional (and must be the caller's own)
    #: for a session.
    user_id: UserId | None = None


class RegistrationOptionsRequest(_Body):
    user_name: str = Field(min_length=1, max_length=USER_ID_MAX)
    display_name: str | None = Field(default=None, min_length=1, max_length=USER_ID_MAX)


class RegistrationVerifyRequest(_Body):
    challenge_id: ChallengeId
    #: ``PublicKeyCredential.toJSON()`` of the result of ``navigator.credentials.create()``.
    credential: dict[str, JsonValue]


class AuthenticationOptionsRequest(_Body):
    pass


class AuthenticationVerifyRequest(_Body):
    challenge_id: ChallengeId
    #: ``PublicKeyCredential.toJSON()`` of the result of ``navigator.credentials.get()``.
    credential: dict[str, JsonValue]

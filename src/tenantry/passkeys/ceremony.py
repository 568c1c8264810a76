"""The WebAuthn side of the ceremonies, over the ``webauthn`` package; no storage here.

Parsing (:func:`parse_registration`, :func:`parse_authentication`) raises
:class:`~tenantry.errors.InvalidInput` for a body that is not a ``PublicKeyCredential`` JSON at
all; verification (:func:`check_registration`, :func:`check_authentication`) raises
:class:`~tenantry.errors.AuthenticationError` for everything the library refuses, and for any
other error its parsers hit on hostile bytes (CBOR, COSE keys, EC points): whatever breaks while
checking a response means the response is not valid, never a 500.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.authentication.verify_authentication_response import VerifiedAuthentication
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)
from webauthn.registration.verify_registration_response import VerifiedRegistration

from tenantry.errors import AuthenticationError, InvalidInput
from tenantry.passkeys.schemas import CHALLENGE_ID_PATTERN, USER_ID_MAX

__all__ = [
    "MAX_CREDENTIAL_JSON",
    "SUPPORTED_ALGORITHMS",
    "check_authentication",
    "check_challenge",
    "check_registration",
    "creation_options",
    "decode_credential_id",
    "descriptor",
    "parse_authentication",
    "parse_registration",
    "request_options",
    "require_challenge_id",
    "require_text",
    "user_handle",
    "utcnow",
]

#: The largest credential JSON accepted (a real one is 1-3 KiB).
MAX_CREDENTIAL_JSON = 64 * 1024
#: ES256 first (every platform authenticator), then Ed25519 and RS256 (Windows Hello).
SUPPORTED_ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]


_CHALLENGE_ID = re.compile(CHALLENGE_ID_PATTERN)
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]{2,1400}$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def require_text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > USER_ID_MAX:
        raise InvalidInput(f"{name} must be 1-{USER_ID_MAX} characters")
    return value


def require_challenge_id(value: object) -> str:
    if not isinstance(value, str) or _CHALLENGE_ID.fullmatch(value) is None:
        raise InvalidInput("challenge_id is not a challenge id issued by the options call")
    return value


def decode_credential_id(value: object) -> bytes:
    """A credential id given as base64url (as the browser and this API show it)."""
    if not isinstance(value, str) or _BASE64URL.fullmatch(value) is None or len(value) % 4 == 1:
        raise InvalidInput("credential_id must be base64url")
    return base64url_to_bytes(value)


def check_challenge(row: Mapping[Any, Any] | None, session_id: str | None) -> bytes:
    """The bytes of a challenge just taken from storage, if it may still be answered."""
    if row is None:
        raise AuthenticationError("unknown or already used passkey challenge: ask for new options")
    if row["expires_at"] <= utcnow():
        raise AuthenticationError("the passkey challenge expired: ask for new options")
    if row["session_id"] != session_id:
        raise AuthenticationError("the passkey challenge was issued for another session")
    return bytes(row["challenge"])


def user_handle(tenant_id: str, user_id: str) -> bytes:
    """The WebAuthn user handle: opaque (no personal data), stable per tenant and user."""
    return hashlib.sha256(f"tenantry-passkey\x00{tenant_id}\x00{user_id}".encode()).digest()


def descriptor(row: Mapping[Any, Any]) -> PublicKeyCredentialDescriptor:
    """The descriptor (id and transports) of a stored credential, for allow/exclude lists."""
    known = {t.value for t in AuthenticatorTransport}
    transports = [AuthenticatorTransport(t) for t in row["transports"] or [] if t in known]
    return PublicKeyCredentialDescriptor(id=bytes(row["credential_id"]), transports=transports)


def creation_options(
    *,
    rp_id: str,
    rp_name: str,
    handle: bytes,
    user_name: str,
    display_name: str,
    challenge: bytes,
    exclude: list[PublicKeyCredentialDescriptor],
    timeout_ms: int,
) -> dict[str, Any]:
    """``PublicKeyCredentialCreationOptions`` as JSON: UV required, resident key preferred."""
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_id=handle,
        user_name=user_name,
        user_display_name=display_name,
        challenge=challenge,
        timeout=timeout_ms,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=exclude,
        supported_pub_key_algs=SUPPORTED_ALGORITHMS,
    )
    return options_to_json_dict(options)


def request_options(
    *, rp_id: str, challenge: bytes, allow: list[PublicKeyCredentialDescriptor], timeout_ms: int
) -> dict[str, Any]:
    """``PublicKeyCredentialRequestOptions`` as JSON: only ``allow``, UV required."""
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=challenge,
        timeout=timeout_ms,
        allow_credentials=allow,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json_dict(options)


def _as_json(credential: object) -> dict[str, Any]:
    if isinstance(credential, str | bytes):
        if len(credential) > MAX_CREDENTIAL_JSON:
            raise InvalidInput(f"the credential JSON is larger than {MAX_CREDENTIAL_JSON} bytes")
        try:
            credential = json.loads(credential)
        except (ValueError, RecursionError):
            raise InvalidInput("the credential is not valid JSON") from None
    if not isinstance(credential, dict):
        raise InvalidInput("the credential must be a JSON object (PublicKeyCredential.toJSON())")
    return credential


def _check_ids(raw_id: bytes, encoded: str) -> None:
    if not raw_id or bytes_to_base64url(raw_id) != encoded or len(raw_id) > 1023:
        raise InvalidInput("the credential's id and rawId must be the same 1-1023 byte base64url")


def parse_registration(credential: object) -> RegistrationCredential:
    """The result of ``navigator.credentials.create()`` (its ``toJSON()``, a dict or a string)."""
    try:
        parsed = parse_registration_credential_json(_as_json(credential))
    except (WebAuthnException, ValueError, TypeError) as exc:  # userHandle is decoded unguarded
        raise InvalidInput(f"malformed registration credential: {exc}") from None
    _check_ids(parsed.raw_id, parsed.id)
    return parsed


def parse_authentication(credential: object) -> AuthenticationCredential:
    """The result of ``navigator.credentials.get()`` (its ``toJSON()``, a dict or a string)."""
    try:
        parsed = parse_authentication_credential_json(_as_json(credential))
    except (WebAuthnException, ValueError, TypeError) as exc:  # userHandle is decoded unguarded
        raise InvalidInput(f"malformed authentication credential: {exc}") from None
    _check_ids(parsed.raw_id, parsed.id)
    return parsed


def check_registration(
    credential: RegistrationCredential, *, challenge: bytes, rp_id: str, origin: str
) -> VerifiedRegistration:
    """Verify an attestation (UV required) and that its public key is usable."""
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            require_user_presence=True,
            require_user_verification=True,
            supported_pub_key_algs=SUPPORTED_ALGORITHMS,
        )
        decoded_public_key_to_cryptography(
            decode_credential_public_key(verified.credential_public_key)
        )
    except WebAuthnException as exc:
        raise AuthenticationError(f"passkey registration refused: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - hostile CBOR/COSE bytes: see the module docstring
        raise AuthenticationError(
            f"passkey registration refused: unreadable response ({type(exc).__name__})"
        ) from None
    if verified.credential_id != credential.raw_id:
        raise AuthenticationError(
            "passkey registration refused: rawId is not the attested credential id"
        )
    return verified


def check_authentication(
    credential: AuthenticationCredential,
    *,
    challenge: bytes,
    rp_id: str,
    origin: str,
    public_key: bytes,
) -> VerifiedAuthentication:
    """Verify an assertion's challenge, origin, RP id, UP and UV flags and signature.

    The sign counter is left to the caller (it is passed as 0, which the library never refuses),
    so that a counter regression is reported only for an assertion whose signature is valid:
    that is the cloned-authenticator signal, not noise anyone can produce.
    """
    try:
        return verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        raise AuthenticationError(f"passkey assertion refused: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - hostile CBOR/COSE bytes: see the module docstring
        raise AuthenticationError(
            f"passkey assertion refused: unreadable response ({type(exc).__name__})"
        ) from None

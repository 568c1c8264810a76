"""A software WebAuthn authenticator and client, for tests: real P-256 keys, real CBOR.

It plays the browser (``navigator.credentials.create()/get()`` plus ``PublicKeyCredential.
toJSON()``) and the authenticator behind it, as the WebAuthn Level 3 specification lays them out:

- clientDataJSON: ``{"type", "challenge" (base64url), "origin", "crossOrigin"}``;
- authenticatorData: ``sha256(rp_id) ‖ flags ‖ signCount (u32 BE)``, plus, at registration,
  attestedCredentialData ``aaguid ‖ len(credId) (u16 BE) ‖ credId ‖ COSE_Key`` (CBOR);
- attestationObject: CBOR ``{"fmt": "none", "attStmt": {}, "authData": ...}``;
- an assertion's signature: ECDSA P-256 / SHA-256 (DER) over
  ``authenticatorData ‖ sha256(clientDataJSON)``.

Every field can be spoiled on purpose (origin, RP id, challenge, flags, counter) to test that the
relying party refuses it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "FLAG_AT",
    "FLAG_UP",
    "FLAG_UV",
    "SoftAuthenticator",
    "SoftCredential",
    "b64url",
    "unb64url",
]

FLAG_UP, FLAG_UV, FLAG_AT = 0x01, 0x04, 0x40
AAGUID = bytes.fromhex("7e5a1d2c9b3f4e6a8c0d1e2f3a4b5c6d")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftCredential:
    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    def cose_public_key(self) -> bytes:
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


class SoftAuthenticator:
    """A platform authenticator with user verification, and the browser around it."""

    def __init__(self, origin: str = "http://localhost:8000") -> None:
        self.origin = origin
        self.credentials: dict[bytes, SoftCredential] = {}

    def clone(self) -> SoftAuthenticator:
        """A copy with the same keys and counters: what an attacker who cloned it would hold."""
        twin = SoftAuthenticator(self.origin)
        twin.credentials = {k: copy.copy(v) for k, v in self.credentials.items()}
        return twin

    @staticmethod
    def _client_data(kind: str, challenge: bytes, origin: str) -> bytes:
        body = {"type": kind, "challenge": b64url(challenge), "origin": origin}
        return json.dumps({**body, "crossOrigin": False}, separators=(",", ":")).encode()

    @staticmethod
    def _auth_data(rp_id: str, flags: int, sign_count: int, attested: bytes = b"") -> bytes:
        return (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([flags])
            + struct.pack(">I", sign_count)
            + attested
        )

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | None = None,
        flags: int = FLAG_UP | FLAG_UV | FLAG_AT,
        kind: str = "webauthn.create",
        reuse: bytes | None = None,
        cose_key: bytes | None = None,
    ) -> dict[str, Any]:
        """``navigator.credentials.create({publicKey: options})``, then ``.toJSON()``.

        ``reuse`` attests a credential it holds already, ignoring ``excludeCredentials`` (what a
        misbehaving client could send); ``cose_key`` replaces the attested public key.
        """
        rp = rp_id or options["rp"].get("id") or "localhost"
        if reuse is not None:
            credential = self.credentials[reuse]
        else:
            excluded = {unb64url(c["id"]) for c in options.get("excludeCredentials", [])}
            if excluded & set(self.credentials):
                raise ValueError("InvalidStateError: it holds an excluded credential")
            credential = SoftCredential(
                credential_id=secrets.token_bytes(32),
                private_key=ec.generate_private_key(ec.SECP256R1()),
                rp_id=rp,
                user_handle=unb64url(options["user"]["id"]),
            )
            self.credentials[credential.credential_id] = credential
        public_key = credential.cose_public_key() if cose_key is None else cose_key
        attested = (
            AAGUID
            + struct.pack(">H", len(credential.credential_id))
            + credential.credential_id
            + public_key
        )
        auth_data = self._auth_data(rp, flags, credential.sign_count, attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data(
            kind, challenge or unb64url(options["challenge"]), origin or self.origin
        )
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "authenticatorData": b64url(auth_data),
                "publicKeyAlgorithm": -7,
                "transports": ["internal", "hybrid"],
            },
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        credential_id: bytes | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: bytes | None = None,
        flags: int = FLAG_UP | FLAG_UV,
        sign_count: int | None = None,
        kind: str = "webauthn.get",
    ) -> dict[str, Any]:
        """``navigator.credentials.get({publicKey: options})``, then ``.toJSON()``.

        Uses ``credential_id``, else the first allowed credential it holds; the counter goes up
        by one per assertion unless ``sign_count`` says what to report.
        """
        if credential_id is None:
            allowed = [unb64url(c["id"]) for c in options.get("allowCredentials", [])]
            held = [c for c in allowed if c in self.credentials] or list(self.credentials)
            credential_id = held[0]
        credential = self.credentials[credential_id]
        if sign_count is None:
            credential.sign_count += 1
            sign_count = credential.sign_count
        auth_data = self._auth_data(
            rp_id or options.get("rpId") or credential.rp_id, flags, sign_count
        )
        client_data = self._client_data(
            kind, challenge or unb64url(options["challenge"]), origin or self.origin
        )
        signature = credential.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(credential_id),
            "rawId": b64url(credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(credential.user_handle),
            },
        }

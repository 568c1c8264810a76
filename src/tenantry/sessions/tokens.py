"""Opaque tokens: 256 random bits, a recognizable prefix, the tenant, and a checksum.

    tnt_s_<tenant>.<43 chars: 32 random bytes, base64url><6 chars: CRC32 of the rest, base62>

``tnt_s_`` marks a session token, ``tnt_k_`` an API key, so secret scanners can find leaked ones
(``tnt_[sk]_[a-z0-9_-]{3,63}\\.[A-Za-z0-9_-]{43}[0-9A-Za-z]{6}``) and the checksum lets them, and
us, reject a mistyped or made-up token without a database lookup. The tenant is in the token
(it is not secret) so that validation can open the right tenant transaction. Tokens are stored
only as their SHA-256 (256 random bits need no salt or slow hash) and compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass
from typing import Final, Literal

from tenantry.context import validate_tenant_id
from tenantry.errors import AuthenticationError, InvalidTenantId

__all__ = [
    "ParsedToken",
    "TokenKind",
    "hash_token",
    "make_id",
    "make_token",
    "parse_token",
    "tenant_of_id",
]

TokenKind = Literal["s", "k"]
_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SHAPE = re.compile(r"tnt_([sk])_([a-z0-9][a-z0-9_-]{2,62})\.([A-Za-z0-9_-]{43})([0-9A-Za-z]{6})")


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 62)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), 6)


def make_token(kind: TokenKind, tenant_id: str) -> str:
    """A new token of ``kind`` for ``tenant_id``."""
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    body = f"tnt_{kind}_{validate_tenant_id(tenant_id)}.{secret}"
    return body + _checksum(body)


def make_id(prefix: str, tenant_id: str) -> str:
    """A public identifier that names its tenant: ``<prefix>_<tenant>.<22 random chars>``."""
    return f"{prefix}_{tenant_id}.{secrets.token_urlsafe(16)}"


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class ParsedToken:
    kind: TokenKind
    tenant_id: str
    digest: bytes

    def matches(self, stored: bytes) -> bool:
        return hmac.compare_digest(self.digest, stored)


def parse_token(token: str, kind: TokenKind) -> ParsedToken:
    """Check the shape and checksum of ``token``; raises AuthenticationError when it is not one."""
    match = _SHAPE.fullmatch(token) if isinstance(token, str) and len(token) < 200 else None
    if match is None or match.group(1) != kind:
        raise AuthenticationError("malformed token")
    body_end = len(token) - 6
    if not hmac.compare_digest(_checksum(token[:body_end]), match.group(4)):
        raise AuthenticationError("malformed token: bad checksum")
    # The pattern above is the tenant id pattern: group 2 is a valid tenant id.
    return ParsedToken(kind, match.group(2), hash_token(token))


def tenant_of_id(identifier: str, prefix: str) -> str | None:
    """The tenant named in an identifier from :func:`make_id`, or None if it is not one."""
    head, dot, _ = identifier.partition(".")
    if not dot or not head.startswith(prefix + "_"):
        return None
    tenant = head[len(prefix) + 1 :]
    try:
        return validate_tenant_id(tenant)
    except InvalidTenantId:
        return None

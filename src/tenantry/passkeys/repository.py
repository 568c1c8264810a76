"""SQL of the passkeys domain: credentials and single-use ceremony challenges.

Both tables are tenant-owned; every method runs inside a tenant transaction, so PostgreSQL
already limits the statements to the current tenant.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping

from tenantry.db.repository import TenantRepository
from tenantry.passkeys.models import passkey_credentials, webauthn_challenges

__all__ = ["ChallengesRepository", "CredentialsRepository"]

_PUBLIC = (
    passkey_credentials.c.credential_id,
    passkey_credentials.c.user_id,
    passkey_credentials.c.sign_count,
    passkey_credentials.c.transports,
    passkey_credentials.c.aaguid,
    passkey_credentials.c.created_at,
    passkey_credentials.c.last_used_at,
)


class ChallengesRepository(TenantRepository):
    async def add(
        self,
        *,
        challenge_id: str,
        user_id: str,
        purpose: str,
        challenge: bytes,
        session_id: str | None,
        expires_at: datetime,
    ) -> None:
        await self.conn.execute(
            pg_insert(webauthn_challenges).values(
                tenant_id=self.tenant_id,
                challenge_id=challenge_id,
                user_id=user_id,
                purpose=purpose,
                challenge=challenge,
                session_id=session_id,
                expires_at=expires_at,
            )
        )

    async def take(self, challenge_id: str, user_id: str, purpose: str) -> RowMapping | None:
        """Delete the challenge and return it: a challenge can be taken once."""
        statement = (
            delete(webauthn_challenges)
            .where(
                webauthn_challenges.c.challenge_id == challenge_id,
                webauthn_challenges.c.user_id == user_id,
                webauthn_challenges.c.purpose == purpose,
            )
            .returning(
                webauthn_challenges.c.challenge,
                webauthn_challenges.c.session_id,
                webauthn_challenges.c.expires_at,
            )
        )
        return (await self.conn.execute(statement)).mappings().first()

    async def purge_expired(self, now: datetime) -> int:
        statement = delete(webauthn_challenges).where(webauthn_challenges.c.expires_at < now)
        return int((await self.conn.execute(statement)).rowcount)


class CredentialsRepository(TenantRepository):
    async def add(
        self,
        *,
        credential_id: bytes,
        user_id: str,
        public_key: bytes,
        sign_count: int,
        transports: list[str],
        aaguid: str | None,
    ) -> RowMapping | None:
        """Insert a credential; ``None`` when this tenant has it already."""
        statement = (
            pg_insert(passkey_credentials)
            .values(
                tenant_id=self.tenant_id,
                credential_id=credential_id,
                user_id=user_id,
                public_key=public_key,
                sign_count=sign_count,
                transports=transports,
                aaguid=aaguid,
            )
            .on_conflict_do_nothing(
                index_elements=[
                    passkey_credentials.c.tenant_id,
                    passkey_credentials.c.credential_id,
                ]
            )
            .returning(*_PUBLIC)
        )
        return (await self.conn.execute(statement)).mappings().first()

    async def get(self, credential_id: bytes) -> RowMapping | None:
        """The credential with its public key."""
        query = select(*_PUBLIC, passkey_credentials.c.public_key).where(
            passkey_credentials.c.credential_id == credential_id
        )
        return (await self.conn.execute(query)).mappings().first()

    async def list_for_user(self, user_id: str) -> Sequence[RowMapping]:
        query = (
            select(*_PUBLIC)
            .where(passkey_credentials.c.user_id == user_id)
            .order_by(passkey_credentials.c.created_at, passkey_credentials.c.credential_id)
        )
        return (await self.conn.execute(query)).mappings().all()

    async def advance_counter(self, credential_id: bytes, expected: int, new: int) -> bool:
        """Store ``new`` as the sign count if it is still ``expected`` (compare and set)."""
        statement = (
            update(passkey_credentials)
            .where(
                passkey_credentials.c.credential_id == credential_id,
                passkey_credentials.c.sign_count == expected,
            )
            .values(sign_count=new, last_used_at=func.now())
        )
        return bool((await self.conn.execute(statement)).rowcount)

    async def delete(self, credential_id: bytes, user_id: str) -> bool:
        statement = delete(passkey_credentials).where(
            passkey_credentials.c.credential_id == credential_id,
            passkey_credentials.c.user_id == user_id,
        )
        return bool((await self.conn.execute(statement)).rowcount)

"""API keys of service accounts: scoped, expiring, stored as hashes, revoked per tenant.

A key's scopes narrow what its ``service`` role may do (:func:`tenantry.access.scope_allows`);
each is an action of the catalogue (:mod:`tenantry.actions`), ``<domain>:*`` for a domain that
has actions, or ``*``. Anything else is InvalidInput, and no key is made.

Creating and revoking a key writes ``api_key.create``/``api_key.revoke`` to the tenant's audit
log, in the transaction of the change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tenantry.actions import ACTIONS, is_action
from tenantry.cache.manager import CacheManager
from tenantry.context import RESERVED_TENANTS, tenant_scope, validate_tenant_id
from tenantry.db.changes import ChangeLog, RecordsChanges
from tenantry.db.engine import Database
from tenantry.errors import AuthenticationError, InvalidInput, NotFound, PermissionDenied
from tenantry.principal import Principal, PrincipalKind
from tenantry.sessions.repository import ApiKeysRepository
from tenantry.sessions.schemas import ApiKeyInfo, IssuedApiKey
from tenantry.sessions.tokens import hash_token, make_id, make_token, parse_token
from tenantry.tenants.manager import TenantRegistry
from tenantry.tenants.status import ActiveTenants
from tenantry.tracing import traced

__all__ = ["ApiKeys"]

#: ``<domain>:*`` for each domain of the catalogue of actions.
_DOMAIN_SCOPES = frozenset(f"{action.partition(':')[0]}:*" for action in ACTIONS)


def _valid_scope(scope: object) -> bool:
    """An action of the catalogue, ``<domain>:*`` for a domain that has actions, or ``*``."""
    return isinstance(scope, str) and (is_action(scope) or scope in _DOMAIN_SCOPES or scope == "*")


def _check_scopes(scopes: object) -> list[str]:
    """The scopes, sorted and without duplicates; InvalidInput naming those that are not."""
    if not isinstance(scopes, list | tuple | set | frozenset):
        raise InvalidInput("scopes must be a list of scopes")
    bad = [scope for scope in scopes if not _valid_scope(scope)]
    if bad:
        shown = ", ".join(repr(scope)[:80] for scope in bad[:5])
        raise InvalidInput(
            f"invalid scope{'s' if len(bad) > 1 else ''} {shown}: a scope is an action"
            " ('settings:read'), '<domain>:*' for a domain of actions ('settings:*'), or '*'"
        )
    return sorted({scope for scope in scopes if isinstance(scope, str)})


def _key(digest: bytes) -> str:
    return "apikey:" + digest.hex()


class ApiKeys(RecordsChanges):
    """Create, list, revoke and authenticate API keys (``tnt_k_...``)."""

    def __init__(
        self,
        database: Database | None = None,
        *,
        cache: CacheManager | None = None,
        cache_ttl: float = 60.0,
        audit: ChangeLog | None = None,
        active: ActiveTenants | None = None,
    ) -> None:
        self._database = database
        self._audit = audit
        self._active = active
        self.cache = cache or CacheManager(l1_bytes=4 * 1024 * 1024)
        self.cache_ttl = cache_ttl

    async def create(
        self,
        tenant_id: str,
        name: str,
        service_account: str,
        *,
        scopes: list[str] | tuple[str, ...] = (),
        expires_in: timedelta | None = timedelta(days=90),
        actor: str | None = None,
    ) -> IssuedApiKey:
        """A new key; its secret is in the result only, never stored."""
        validate_tenant_id(tenant_id)
        if tenant_id in RESERVED_TENANTS:
            raise PermissionDenied(f"tenant {tenant_id!r} is tenantry's own: it has no API keys")
        if not 0 < len(name) <= 200 or not 0 < len(service_account) <= 200:
            raise InvalidInput("name and service_account must be 1-200 characters")
        granted = _check_scopes(scopes)
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidInput("expires_in must be positive")
        key, key_id = make_token("k", tenant_id), make_id("key", tenant_id)
        db, trail = await self._db(), await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                row = await ApiKeysRepository(conn).insert(
                    key_id=key_id,
                    name=name,
                    service_account=service_account,
                    scopes=granted,
                    key_hash=hash_token(key),
                    expires_at=None if expires_in is None else datetime.now(UTC) + expires_in,
                )
                detail = {"account": service_account, "scopes": granted}
                await trail.record(
                    tenant_id, "api_key.create", f"api_key:{key_id}", actor=actor, detail=detail
                )
        return IssuedApiKey(**dict(row), key=key)

    async def list(self, tenant_id: str) -> list[ApiKeyInfo]:
        validate_tenant_id(tenant_id)
        db = await self._db()
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                rows = await ApiKeysRepository(conn).list()
        return [ApiKeyInfo.model_validate(dict(r)) for r in rows]

    async def revoke(self, tenant_id: str, key_id: str, *, actor: str | None = None) -> None:
        validate_tenant_id(tenant_id)
        db, trail = await self._db(), await self._trail(tenant_id)
        with tenant_scope(tenant_id):
            async with db.tenant_transaction() as conn:
                digest = await ApiKeysRepository(conn).revoke(key_id)
                if digest is not None:
                    await trail.record(
                        tenant_id, "api_key.revoke", f"api_key:{key_id}", actor=actor
                    )
            if digest is None:
                raise NotFound(f"API key {key_id!r} does not exist or is revoked")
            await self.cache.delete(_key(digest))

    @traced("api_keys.authenticate")
    async def authenticate(self, key: str) -> Principal:
        """The service account's principal for a live key; AuthenticationError otherwise."""
        parsed = parse_token(key, "k")
        if self._active is None:
            self._active = ActiveTenants(TenantRegistry(await self._db()), self.cache)
        active = self._active
        if not active.exists(parsed.tenant_id) and not await active.known(parsed.tenant_id):
            raise AuthenticationError("invalid API key")  # as for any forged key
        with tenant_scope(parsed.tenant_id):
            cached: dict[str, Any] | None = await self.cache.get(_key(parsed.digest))
            if cached is None:
                fill = await self.cache.fill_token(_key(parsed.digest))  # before the read
                db = await self._db()
                async with db.tenant_transaction() as conn:
                    repo = ApiKeysRepository(conn)
                    row = await repo.by_hash(parsed.digest)
                    if row is None or not parsed.matches(bytes(row["key_hash"])):
                        raise AuthenticationError("invalid API key")
                    if row["revoked_at"] is not None:
                        raise AuthenticationError("the API key was revoked")
                    await repo.mark_used(row["key_id"])
                expires = row["expires_at"]
                cached = {
                    "id": row["key_id"],
                    "account": row["service_account"],
                    "scopes": list(row["scopes"]),
                    "expires": expires.timestamp() if expires else None,
                }
                await self.cache.fill(_key(parsed.digest), cached, fill, ttl=self.cache_ttl)
            await active.check(parsed.tenant_id)  # a genuine key of a tenant that is not active
        if cached["expires"] is not None and datetime.now(UTC).timestamp() >= cached["expires"]:
            raise AuthenticationError("the API key has expired")
        return Principal(
            tenant_id=parsed.tenant_id,
            principal_id=cached["account"],
            kind=PrincipalKind.API_KEY,
            roles=frozenset({"service"}),
            scopes=frozenset(cached["scopes"]),
        )

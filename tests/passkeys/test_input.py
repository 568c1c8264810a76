"""Bad input: malformed credentials, unusable keys, bad arguments, duplicates."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest

from tenantry.errors import AuthenticationError, Conflict, InvalidInput, TenantNotFound
from tenantry.passkeys.manager import PasskeyManager
from tests.conftest import NewTenant
from tests.passkeys.authenticator import SoftAuthenticator
from tests.passkeys.conftest import ORIGIN, RP_ID
from tests.passkeys.helpers import raw


@pytest.mark.parametrize(
    "cose_key",
    [
        cbor2.dumps({1: 2, 3: -7, -1: 1, -2: b"\x01" * 32, -3: b"\x02" * 32}),  # not on P-256
        cbor2.dumps({1: 2, -1: 1}),  # no alg
        cbor2.dumps({1: 2, 3: -36, -1: 1, -2: b"\x01" * 32, -3: b"\x02" * 32}),  # ES512
        cbor2.dumps({1: 1, 3: -8, -1: 6, -2: b"\x01"}),  # a short Ed25519 key
        cbor2.dumps([1, 2, 3]),
        b"\x04",
    ],
)
async def test_unusable_public_keys_are_refused_at_registration(
    manager: PasskeyManager,
    authenticator: SoftAuthenticator,
    new_tenant: NewTenant,
    cose_key: bytes,
) -> None:
    tenant = (await new_tenant("pk")).id
    challenge_id, options = await manager.registration_options(tenant, "u-1", "ada")
    response = authenticator.create(options, cose_key=cose_key)
    with pytest.raises(AuthenticationError, match="registration refused"):
        await manager.verify_registration(tenant, "u-1", challenge_id, response)
    assert await manager.list_credentials(tenant, "u-1") == []


@pytest.mark.parametrize(
    "credential",
    [
        "not json",
        "[1, 2]",
        "{}",
        {"id": "AA", "rawId": "AA", "type": "public-key"},
        {"id": "AA", "rawId": "AQ", "type": "public-key", "response": {}},
        {"id": "", "rawId": "", "type": "public-key", "response": {}},
        {"id": "AA", "rawId": "AA", "type": "secret", "response": {}},
        "[" * 100_000,
        {
            "id": "AA",
            "rawId": "AA",
            "type": "public-key",
            "response": {
                "clientDataJSON": "AA",
                "authenticatorData": "AA",
                "signature": "AA",
                "userHandle": "0",  # not base64url: found by the HTTP fuzz test
            },
        },
    ],
)
async def test_malformed_input_is_invalid_and_keeps_the_challenge(
    manager: PasskeyManager,
    authenticator: SoftAuthenticator,
    new_tenant: NewTenant,
    credential: Any,
) -> None:
    tenant = (await new_tenant("pk")).id
    challenge_id, options = await manager.registration_options(tenant, "u-1", "ada")
    with pytest.raises(InvalidInput):
        await manager.verify_registration(tenant, "u-1", challenge_id, credential)
    await manager.verify_registration(tenant, "u-1", challenge_id, authenticator.create(options))
    challenge_id, options = await manager.authentication_options(tenant, "u-1")
    with pytest.raises(InvalidInput):
        await manager.verify_authentication(tenant, "u-1", challenge_id, credential)
    await manager.verify_authentication(tenant, "u-1", challenge_id, authenticator.get(options))


async def test_bad_arguments(manager: PasskeyManager, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant("pk")).id
    with pytest.raises(InvalidInput, match="user_id"):
        await manager.registration_options(tenant, "", "ada")
    with pytest.raises(InvalidInput, match="user_name"):
        await manager.registration_options(tenant, "u-1", "x" * 300)
    with pytest.raises(InvalidInput, match="challenge_id"):
        await manager.verify_registration(tenant, "u-1", "nope", {})
    with pytest.raises(InvalidInput, match="base64url"):
        await manager.delete_credential(tenant, "u-1", "%%%")
    with pytest.raises(TenantNotFound):
        await manager.registration_options("no-such-tenant-pk", "u-1", "ada")
    with pytest.raises(InvalidInput, match="challenge_ttl"):
        PasskeyManager(rp_id=RP_ID, origin=ORIGIN, challenge_ttl=0)
    with pytest.raises(InvalidInput, match="origin"):
        PasskeyManager(rp_id=RP_ID, origin="localhost")
    assert PasskeyManager().rp_id == "localhost"  # from Settings


async def test_a_replayed_or_duplicate_registration_is_refused(
    manager: PasskeyManager, authenticator: SoftAuthenticator, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("pk")).id
    challenge_id, options = await manager.registration_options(tenant, "u-1", "ada")
    response = authenticator.create(options)
    created = await manager.verify_registration(tenant, "u-1", challenge_id, response)
    # The same attestation against a fresh challenge: refused (its challenge is the old one).
    challenge_id, options = await manager.registration_options(tenant, "u-1", "ada")
    with pytest.raises(AuthenticationError, match="challenge"):
        await manager.verify_registration(tenant, "u-1", challenge_id, response)
    # A client that ignores excludeCredentials and attests the same credential again.
    challenge_id, options = await manager.registration_options(tenant, "u-1", "ada")
    again = authenticator.create(options, reuse=raw(created.credential_id))
    with pytest.raises(Conflict):
        await manager.verify_registration(tenant, "u-1", challenge_id, again)
    # The same authenticator may hold a passkey in another tenant: a separate credential row.
    other = (await new_tenant("pk")).id
    challenge_id, options = await manager.registration_options(other, "u-1", "ada")
    elsewhere = authenticator.create(options, reuse=raw(created.credential_id))
    assert (await manager.verify_registration(other, "u-1", challenge_id, elsewhere)) is not None

"""Whose passkey it is: sign counters (cloned authenticators), users and tenants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tenantry.context import tenant_scope
from tenantry.db.engine import Database
from tenantry.errors import AuthenticationError, NotFound
from tenantry.passkeys.manager import COUNTER_REGRESSION_EVENT, PasskeyManager
from tenantry.passkeys.models import passkey_credentials
from tenantry.threats.events import SecurityEvents
from tests.conftest import NewTenant
from tests.passkeys.authenticator import SoftAuthenticator
from tests.passkeys.conftest import ORIGIN
from tests.passkeys.helpers import assertion_for, raw, register, stored_count


async def test_counter_regression_is_refused_and_recorded(
    manager: PasskeyManager, authenticator: SoftAuthenticator, new_tenant: NewTenant, db: Database
) -> None:
    tenant = (await new_tenant("pk")).id
    created = await register(manager, authenticator, tenant, "u-1")
    clone = authenticator.clone()  # counter 0, like the original
    for _ in range(3):
        challenge_id, response = await assertion_for(manager, authenticator, tenant, "u-1")
        await manager.verify_authentication(tenant, "u-1", challenge_id, response)
    since = datetime.now(UTC) - timedelta(minutes=1)
    challenge_id, response = await assertion_for(manager, clone, tenant, "u-1")  # counter 1 < 3
    with pytest.raises(AuthenticationError, match="cloned"):
        await manager.verify_authentication(tenant, "u-1", challenge_id, response)
    challenge_id, response = await assertion_for(
        manager, authenticator, tenant, "u-1", sign_count=3
    )
    with pytest.raises(AuthenticationError, match="did not increase"):
        await manager.verify_authentication(tenant, "u-1", challenge_id, response)
    assert await stored_count(manager, tenant) == 3

    events = await SecurityEvents(db).since(tenant, since, kinds=(COUNTER_REGRESSION_EVENT,))
    assert len(events) == 2
    assert {e.detail["presented_sign_count"] for e in events} == {1, 3}
    assert all(e.severity == "high" and e.principal_id == "u-1" for e in events)
    assert events[0].detail["credential_id"] == created.credential_id

    # An authenticator without a counter (always 0) is accepted while the stored count is 0.
    other_tenant = (await new_tenant("pk")).id
    counterless = SoftAuthenticator(ORIGIN)
    await register(manager, counterless, other_tenant, "u-9")
    for _ in range(2):
        challenge_id, response = await assertion_for(
            manager, counterless, other_tenant, "u-9", sign_count=0
        )
        assertion = await manager.verify_authentication(other_tenant, "u-9", challenge_id, response)
        assert assertion.new_sign_count == 0


async def test_a_credential_of_user_a_does_not_work_for_user_b(
    manager: PasskeyManager, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant("pk")).id
    alice, bob = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    alice_key = await register(manager, alice, tenant, "alice")
    await register(manager, bob, tenant, "bob")
    challenge_id, options = await manager.authentication_options(tenant, "bob")
    response = alice.get(options, credential_id=raw(alice_key.credential_id))
    with pytest.raises(AuthenticationError, match="not registered for this user"):
        await manager.verify_authentication(tenant, "bob", challenge_id, response)


async def test_a_credential_of_tenant_a_is_invisible_to_tenant_b(
    manager: PasskeyManager, authenticator: SoftAuthenticator, new_tenant: NewTenant, db: Database
) -> None:
    tenant_a, tenant_b = (await new_tenant("pka")).id, (await new_tenant("pkb")).id
    created = await register(manager, authenticator, tenant_a, "u-1")
    assert await manager.list_credentials(tenant_b, "u-1") == []
    with tenant_scope(tenant_b):
        async with db.tenant_transaction() as conn:
            seen = await conn.scalar(
                select(passkey_credentials.c.user_id).where(
                    passkey_credentials.c.credential_id == raw(created.credential_id)
                )
            )
    assert seen is None
    with pytest.raises(NotFound):
        await manager.delete_credential(tenant_b, "u-1", created.credential_id)

    await register(manager, SoftAuthenticator(ORIGIN), tenant_b, "u-1")
    challenge_id, options = await manager.authentication_options(tenant_b, "u-1")
    response = authenticator.get(options, credential_id=raw(created.credential_id))
    with pytest.raises(AuthenticationError, match="not registered for this user"):
        await manager.verify_authentication(tenant_b, "u-1", challenge_id, response)
    assert await stored_count(manager, tenant_a) == 0

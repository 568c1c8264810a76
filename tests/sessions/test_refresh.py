"""Refreshing a device-bound session (issue 12, as item 9 for step-up): before, refresh validated
without the client, read a device mismatch and revoked the session."""

from __future__ import annotations

import pytest

from tenantry.cache import CacheManager
from tenantry.db.engine import Database
from tenantry.errors import AuthenticationError
from tenantry.levels import SecurityLevel
from tenantry.principal import ClientInfo
from tenantry.sessions import SessionManager
from tests.conftest import NewTenant

PHONE = ClientInfo(device_id="phone-7")


async def test_a_device_bound_session_refreshes_from_its_device(
    db: Database, new_tenant: NewTenant
) -> None:
    tenant = (await new_tenant()).id
    manager = SessionManager(db, cache=CacheManager())
    session_id, token = await manager.create_session(
        tenant, "mira", security_level=SecurityLevel.CRITICAL, client=PHONE
    )
    same_id, fresh = await manager.refresh(token, client=PHONE)
    assert same_id == session_id
    assert (await manager.validate(fresh, client=PHONE)).session_id == session_id
    with pytest.raises(AuthenticationError, match="another device"):
        await manager.refresh(fresh, client=ClientInfo(device_id="laptop"))
    with pytest.raises(AuthenticationError):  # that revoked it
        await manager.validate(fresh, client=PHONE)

"""The validation memo holds no bearer token (issue 12: it kept up to 50,000 plaintext tokens)."""

from __future__ import annotations

from tenantry.db.engine import Database
from tenantry.sessions import SessionManager
from tests.conftest import NewTenant


async def test_the_memo_keeps_hashes_not_tokens(db: Database, new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).id
    manager = SessionManager(db)
    _, token = await manager.create_session(tenant, "mira")
    secret = token.rsplit(".", 1)[1]
    for _ in range(3):
        assert (await manager.validate(token)).principal_id == "mira"
    assert manager._memo  # the memo is in use
    held = [repr(key) + repr(value) for key, value in manager._memo.items()]
    assert not any(token in text or secret in text for text in held)

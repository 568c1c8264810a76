"""Each tenant's stored metadata held to its tier's ``storage_bytes``: a write past it answers 413
(problem+json) and stores nothing, deleting records frees space, another tenant is unaffected;
the running total stays equal to the exact sum of the stored versions."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

from tenantry.config import Settings
from tests.conftest import TOKEN
from tests.support.service import running_app, with_tiers


def _body() -> dict[str, object]:  # 600 random characters, stored as they are
    return {
        "metadata_type": "business",
        "content": {"blob": base64.b64encode(os.urandom(450)).decode()},
    }


async def test_a_write_past_the_tiers_storage_bytes_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    tiers = with_tiers(tmp_path, "[free]\nstorage_bytes = 2048\n")
    async with running_app(settings, tier_policies=tiers) as (state, client):
        full, other = (f"sq-{uuid.uuid4().hex[:10]}" for _ in range(2))
        await state.tenants.create(full, "Full")
        await state.tenants.create(other, "Other")
        headers = {**TOKEN, "X-Tenant-ID": full}
        created: list[str] = []
        for _ in range(10):
            answer = await client.post("/metadata/create", json=_body(), headers=headers)
            if answer.status_code != 201:
                break
            created.append(answer.json()["id"])
        assert 1 <= len(created) < 10
        assert answer.status_code == 413, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert "2,048" in answer.json()["detail"]
        used = await state.metadata.storage_used(full)
        assert 0 < used <= 2048
        assert await state.metadata.recount_storage(full) == used  # nothing of it stored
        assert state.metadata.storage_refused[full] == 1
        # The tenant cannot reset its own total: the setting is the metadata manager's.
        key = "/settings/metadata.storage_bytes"
        assert (await client.put(key, json={"value": 0}, headers=headers)).status_code == 403
        assert (await client.delete(key, headers=headers)).status_code == 403
        # An update that would grow past the limit is refused too, and changes nothing.
        grown = {"content": {"blob": os.urandom(1800).hex()}, "expected_version": 1}
        answer = await client.put(f"/metadata/{created[0]}", json=grown, headers=headers)
        assert answer.status_code == 413
        assert (await client.get(f"/metadata/{created[0]}", headers=headers)).json()["version"] == 1
        assert await state.metadata.storage_used(full) == used
        # Another tenant of the same tier has its own total.
        answer = await client.post(
            "/metadata/create", json=_body(), headers={**TOKEN, "X-Tenant-ID": other}
        )
        assert answer.status_code == 201
        # Deleting a record frees its bytes: the next write fits.
        deleted = await client.delete(f"/metadata/{created[0]}", headers=headers)
        assert deleted.status_code == 204
        assert await state.metadata.storage_used(full) < used
        answer = await client.post("/metadata/create", json=_body(), headers=headers)
        assert answer.status_code == 201, answer.text
        assert await state.metadata.storage_used(full) == await state.metadata.recount_storage(full)

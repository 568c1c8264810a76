"""The documents' entry points, and doctor's Redis check against the machine's Redis."""

from __future__ import annotations

import os

import pytest

from tenantry import initialize_managers, validate_module_integrity
from tenantry.config import Settings, load_settings
from tenantry.db.embedded import EmbeddedPostgres
from tenantry.db.migrate import head_revision
from tests.conftest import IN_CI, TEST_DATA_DIR, database_name, recreate_database

REDIS_URL = os.environ.get("TENANTRY_TEST_REDIS_URL")


@pytest.fixture(scope="module")
async def fresh_settings(embedded_server: EmbeddedPostgres) -> Settings:
    name = database_name("entry")
    await recreate_database(embedded_server.url("postgres"), name)
    return load_settings(data_dir=TEST_DATA_DIR, embedded_database=name)


def test_initialize_then_validate(fresh_settings: Settings) -> None:
    before = validate_module_integrity(fresh_settings)
    assert before["ok"] is False
    assert initialize_managers(fresh_settings) == head_revision()
    after = validate_module_integrity(fresh_settings)
    assert after["ok"] is True, after
    names = {c["name"] for c in after["checks"]}
    assert {"config", "migrations", "role tenantry_app", "table tenant_settings"} <= names


def test_doctor_checks_redis_when_configured(fresh_settings: Settings) -> None:
    if REDIS_URL is None:
        if IN_CI:
            pytest.fail("CI=true but TENANTRY_TEST_REDIS_URL is not set")
        pytest.skip("TENANTRY_TEST_REDIS_URL is not set")
    initialize_managers(fresh_settings)
    good = fresh_settings.model_copy(update={"redis_url": REDIS_URL})
    report = validate_module_integrity(good)
    assert {"name": "redis", "ok": True, "detail": "answers PING"} in report["checks"]
    bad = fresh_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    report = validate_module_integrity(bad)
    assert report["ok"] is False
    redis = next(c for c in report["checks"] if c["name"] == "redis")
    assert redis["ok"] is False
    assert redis["detail"].startswith("unreachable")

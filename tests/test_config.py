"""Settings: the documents' variables and tenantry's own; invalid values fail in one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tenantry.cli import app
from tenantry.config import Settings, load_settings
from tenantry.errors import ConfigError


def test_defaults_are_the_embedded_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TENANTRY_DATABASE_URL", "TENANTRY_REDIS_URL", "POSTGRES_POOL_SIZE"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.embedded
    assert settings.postgres_pool_size == 10
    assert settings.port == 8000


def test_the_documents_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MANAGERS_CONFIG_LEVEL", "production")
    monkeypatch.setenv("SECURITY_LEVEL", "quantum")
    monkeypatch.setenv("POSTGRES_POOL_SIZE", "50")
    monkeypatch.setenv("ANOMALY_DETECTION_THRESHOLD", "0.9")
    monkeypatch.setenv("REDIS_CLUSTER_ENABLED", "true")
    monkeypatch.setenv("TENANTRY_DATABASE_URL", "postgresql://u:p@db.internal:5432/app")
    settings = load_settings()
    assert settings.managers_config_level == "production"
    assert settings.security_level == "quantum"
    assert settings.postgres_pool_size == 50
    assert settings.anomaly_detection_threshold == 0.9
    assert settings.redis_cluster_enabled is True
    assert not settings.embedded
    assert settings.server_app_url().username == "tenantry_app"
    assert settings.server_app_url().drivername == "postgresql+asyncpg"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("POSTGRES_POOL_SIZE", "lots", "POSTGRES_POOL_SIZE='lots' is invalid"),
        ("POSTGRES_POOL_SIZE", "0", "greater than or equal to 1"),
        ("SECURITY_LEVEL", "military", "'high', 'critical' or 'quantum'"),
        ("MANAGERS_CONFIG_LEVEL", "prod", "'development', 'staging' or 'production'"),
        ("ANOMALY_DETECTION_THRESHOLD", "1.5", "less than or equal to 1"),
        ("TENANTRY_PORT", "99999", "TENANTRY_PORT='99999' is invalid"),
        ("TENANTRY_DATABASE_URL", "mysql://x@y/z", "a PostgreSQL URL"),
        ("TENANTRY_REDIS_URL", "localhost:6379", "a Redis URL"),
        ("ENABLE_AI_OPTIMIZATION", "perhaps", "valid boolean"),
        ("TENANTRY_AUTO_TRAINING_INTERVAL", "5", "greater than or equal to 60"),
        ("TENANTRY_AUTO_TRAINING_TENANTS", "0", "greater than or equal to 1"),
    ],
)
def test_an_invalid_value_names_the_variable_and_what_it_accepts(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.detail
    assert "\n" not in message
    assert message.startswith(f"{name}=")
    assert expected in message


def test_the_cli_stops_with_one_line_on_bad_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_POOL_SIZE", "-3")
    result = CliRunner().invoke(app, ["migrate"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: POSTGRES_POOL_SIZE='-3' is invalid")


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(Exception, match="frozen"):
        settings.port = 1  # type: ignore[misc]

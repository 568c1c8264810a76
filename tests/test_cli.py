"""The ``tenantry`` command, in process (CliRunner) and as the README runs it (a subprocess)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tenantry.cli import app
from tenantry.cli.support import migrated_database
from tenantry.db.embedded import EmbeddedPostgres
from tenantry.db.migrate import head_revision
from tenantry.metadata import MetadataManager, SchemaRegistry
from tests.conftest import TEST_DATA_DIR, cli_environment, database_name


@pytest.fixture(scope="module")
async def cli_env(embedded_server: EmbeddedPostgres) -> dict[str, str]:
    return await cli_environment(embedded_server, "cli")


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_migrate_then_doctor_reports_rls_forced(cli_env: dict[str, str]) -> None:
    code, out = invoke(cli_env, "migrate")
    assert code == 0, out
    assert f"database at revision {head_revision()}" in out
    code, out = invoke(cli_env, "doctor", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["ok"] is True
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["table tenant_settings"]["ok"]
    assert "RLS enabled and forced" in by_name["table tenant_settings"]["detail"]
    assert by_name["app role cannot bypass RLS"]["ok"]
    assert by_name["role tenantry_app"]["ok"]


def test_tenants_create_list_show(cli_env: dict[str, str]) -> None:
    tenant_id = f"cli-{uuid.uuid4().hex[:8]}"
    code, out = invoke(
        cli_env, "tenants", "create", tenant_id, "--name", "Nightjar Music", "--tier", "premium"
    )
    assert code == 0, out
    assert tenant_id in out
    code, out = invoke(cli_env, "tenants", "list")
    assert code == 0
    assert tenant_id in out
    code, out = invoke(cli_env, "tenants", "show", tenant_id)
    assert json.loads(out)["tier"] == "premium"
    code, out = invoke(cli_env, "tenants", "create", tenant_id, "--name", "again")
    assert code == 1
    assert out.strip() == f"error: tenant {tenant_id!r} exists already"
    code, out = invoke(cli_env, "tenants", "create", "Bad Id", "--name", "x")
    assert code == 1
    assert out.startswith("error: invalid tenant id")
    code, out = invoke(cli_env, "tenants", "show", "no-such-tenant")
    assert code == 1


def test_doctor_fails_on_an_unmigrated_database(embedded_server: EmbeddedPostgres) -> None:
    env = {
        "TENANTRY_DATA_DIR": str(TEST_DATA_DIR),
        "TENANTRY_EMBEDDED_DATABASE": database_name("empty"),
        "TENANTRY_DATABASE_URL": "",
    }
    code, out = invoke(env, "doctor", "--json")
    assert code == 1
    failed = {c["name"] for c in json.loads(out)["checks"] if not c["ok"]}
    assert "migrations" in failed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_is_ready_within_60_seconds(tmp_path: Path) -> None:
    """What the README's run command does, from a data directory of its own."""
    port = free_port()
    env = {
        **os.environ,
        "TENANTRY_DATA_DIR": str(tmp_path / "data"),
        "TENANTRY_PORT": str(port),
        "TENANTRY_DATABASE_URL": "",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tenantry", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    made = None
    try:
        deadline = time.monotonic() + 60
        status: int | str | None = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code
            except httpx.TransportError as exc:
                status = type(exc).__name__
            if status == 200:
                break
            time.sleep(0.25)
        if status == 200:
            token = (tmp_path / "data" / "api-token").read_text().strip()
            made = httpx.post(
                f"http://127.0.0.1:{port}/tenants",
                json={"id": "aurora-records", "display_name": "Aurora Records"},
                headers={"Authorization": f"Bearer {token}"},
            )
    finally:
        exited = process.poll()
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0].decode()
    assert status == 200, (
        f"not ready within 60 s (last answer {status}, exited early: {exited}): {output[-4000:]}"
    )
    assert made is not None
    assert made.status_code == 201, made.text
    assert process.returncode == 0, output
    assert f"API docs: http://127.0.0.1:{port}/docs" in output
    assert f"dashboard: http://127.0.0.1:{port}/dashboard" in output
    assert '"event": "request"' in output  # JSON logs with the request id
    assert '"request_id"' in output
    # The embedded PostgreSQL was stopped on exit.
    assert not (tmp_path / "data" / "pgdata" / "postmaster.pid").exists()


def test_keys_and_audit_commands(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "TENANTRY_DATA_DIR": str(TEST_DATA_DIR)}
    tenant_id = f"cli-keys-{uuid.uuid4().hex[:6]}"
    assert invoke(env, "tenants", "create", tenant_id, "--name", "Keys")[0] == 0
    code, out = invoke(env, "keys", "rotate", "--tenant", tenant_id)
    assert code == 0, out
    code, out = invoke(env, "keys", "rotate", "--tenant", tenant_id)
    assert "data key version 2 is current" in out
    code, out = invoke(env, "keys", "rewrap", "--tenant", tenant_id)
    assert code == 0, out
    code, out = invoke(env, "keys", "list", "--tenant", tenant_id)
    assert out.count("retired") + out.count("current") >= 4
    code, out = invoke(env, "audit", "verify", "--tenant", "platform")
    assert code == 0, out
    assert out.startswith("OK")
    code, out = invoke(env, "audit", "export", "--tenant", "platform")
    assert code == 0, out
    payloads = [e["payload"] for e in json.loads(out)["entries"] if e["payload"] is not None]
    entries = [json.loads(base64.b64decode(p)) for p in payloads]
    mine = [(e["action"], e["actor"]) for e in entries if e["resource"] == f"tenant:{tenant_id}"]
    assert mine == [
        ("tenant.create", "cli:tenantry tenants"),
        ("keys.rotate", "cli:tenantry keys"),
        ("keys.rotate", "cli:tenantry keys"),
        ("keys.rewrap", "cli:tenantry keys"),
    ]
    code, out = invoke(env, "keys", "rotate", "--tenant", "NOT VALID")
    assert code == 1
    assert out.startswith("error: invalid tenant id")


def test_key_commands_on_an_unknown_tenant_say_so(cli_env: dict[str, str]) -> None:
    assert invoke(cli_env, "migrate")[0] == 0
    for command in ("rotate", "list", "rewrap", "level"):
        code, out = invoke(cli_env, "keys", command, "--tenant", "ghost")
        assert code == 1, out
        assert "error: tenant 'ghost' does not exist" in out.splitlines()
        assert "foreign key" not in out
        assert "purpose" not in out  # no (empty) table


def test_metadata_upgrade_moves_records_to_the_latest_schema(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "TENANTRY_DATA_DIR": str(TEST_DATA_DIR)}
    tenant_id = f"cli-meta-{uuid.uuid4().hex[:6]}"
    assert invoke(env, "tenants", "create", tenant_id, "--name", "Meta")[0] == 0
    v1 = {"type": "object", "properties": {"title": {"type": "string"}}}
    v2 = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "genre": {"type": "string", "default": "unknown"},
        },
    }

    async def prepare() -> None:
        async with migrated_database() as database:
            registry = SchemaRegistry(database)
            manager = MetadataManager(database, registry=registry)
            await registry.register(tenant_id, "track", v1, compatibility="NONE")
            for n in range(5):
                await manager.create_metadata(tenant_id, "technical", {"title": f"t{n}"}, "track")
            await registry.register(tenant_id, "track", v2, compatibility="NONE")

    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        asyncio.run(prepare())
    upgrade = ("metadata", "upgrade", "--tenant", tenant_id, "--schema")
    code, out = invoke(env, *upgrade, "track", "--batch", "2")
    assert code == 0, out
    assert "upgraded 5 records of schema 'track'" in out
    code, out = invoke(env, *upgrade, "track")
    assert code == 0, out
    assert "upgraded 0 records" in out  # resumable: nothing is behind any more
    code, out = invoke(env, *upgrade, "nope")
    assert code == 1
    assert out.startswith("error: ")


def test_tenants_erase_needs_yes_and_a_deleted_tenant_then_prints_its_report(
    cli_env: dict[str, str],
) -> None:
    env = {**cli_env, "TENANTRY_DATA_DIR": str(TEST_DATA_DIR)}
    tenant_id = f"cli-erase-{uuid.uuid4().hex[:6]}"
    assert invoke(env, "tenants", "create", tenant_id, "--name", "Erase")[0] == 0

    async def prepare() -> None:
        async with migrated_database() as database:
            await MetadataManager(database).create_metadata(
                tenant_id, "business", {"iban": "NL91ABNA0417164300"}, sensitive=True
            )

    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        asyncio.run(prepare())
    code, out = invoke(env, "tenants", "erase", tenant_id)
    assert code == 2
    assert "pass --yes" in out
    code, out = invoke(env, "tenants", "erase", tenant_id, "--yes")
    assert code == 1
    assert f"error: tenant {tenant_id!r} is active: set its status to deleted first" in out
    code, out = invoke(env, "tenants", "status", tenant_id, "deleted")
    assert code == 0, out
    code, out = invoke(env, "tenants", "erase", tenant_id, "--yes")
    assert code == 0, out
    assert "metadata_records" in out
    assert "verifies" in out
    assert "sealing answers KeysDestroyed" in out
    assert f"{tenant_id}: erased" in out
    code, out = invoke(env, "tenants", "erase", tenant_id, "--yes", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["erased"] is True
    assert report["rows_deleted"] == 0  # erased already
    assert {t["table"]: t["left"] for t in report["tables"]}["metadata_records"] == 0
    code, out = invoke(env, "tenants", "erase", "platform", "--yes")
    assert code == 1
    assert "never erased" in out

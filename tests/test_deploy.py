"""The deployment files: the Kubernetes manifests pass ``kubernetes-validate --strict`` and the
Dockerfile passes ``hadolint`` (both from the dev extra; missing, they skip, and fail with
CI=true), and what they name is real: the settings' environment names, the app's probe routes,
the CLI's commands, the Deployment the HPA, the Role and the autoscaler's settings agree on."""

from __future__ import annotations

import json
import runpy
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import yaml
from pydantic import AliasChoices
from typer.testing import CliRunner

from tenantry.api import create_app
from tenantry.cli import app as cli_app
from tenantry.config import Settings
from tenantry.performance.exposition import RECOMMENDED_REPLICAS
from tests.conftest import IN_CI, ROOT

KUBERNETES = ROOT / "deploy" / "kubernetes"
DOCKERFILE = ROOT / "Dockerfile"
MANIFESTS = sorted(KUBERNETES.glob("*.yaml"))


def tool(name: str) -> str:
    """The dev extra's executable (beside this interpreter first), else skip; fail in CI."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        message = f"{name} is not installed (pip install -e '.[dev]')"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=120, check=False
    )


def documents() -> list[dict[str, Any]]:
    found = []
    for path in MANIFESTS:
        found += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return found


def one(kind: str, name: str) -> dict[str, Any]:
    [found] = [d for d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def containers() -> list[dict[str, Any]]:
    return [
        c
        for d in documents()
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    ]


def setting_names() -> set[str]:
    """Every environment variable :class:`Settings` reads (its aliases' first choice, else the
    field's name), upper case (the settings are case-insensitive)."""
    names = set()
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        first = alias.choices[0] if isinstance(alias, AliasChoices) else field
        names.add(str(first).upper())
    return names


def test_the_manifests_pass_kubernetes_validate_strict(tmp_path: Path) -> None:
    validate = tool("kubernetes-validate")
    kinds = {d["kind"] for d in documents()}
    assert kinds >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Role",
        "RoleBinding",
    }
    checked = run(validate, "--strict", *MANIFESTS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("passed") == len(documents())
    # strict: a field the schema does not know fails (a typo Kubernetes would silently drop)
    wrong = tmp_path / "service.yaml"
    wrong.write_text((KUBERNETES / "service.yaml").read_text().replace("targetPort:", "tagetPort:"))
    refused = run(validate, "--strict", wrong)
    assert refused.returncode != 0
    assert "tagetPort" in refused.stdout + refused.stderr


def test_the_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    hadolint = tool("hadolint")
    checked = run(hadolint, DOCKERFILE)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM python:latest\nRUN pip install tenantry\n")
    refused = run(hadolint, sloppy)
    assert refused.returncode != 0
    assert "DL3007" in refused.stdout  # the tag `latest`


def instructions() -> dict[str, list[str]]:
    """The Dockerfile's instructions by keyword (continuation lines joined)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.setdefault(keyword.upper(), []).append(rest.strip())
    return found


def assert_runs(args: list[str]) -> None:
    """``tenantry <args> --help`` is a command of the CLI (its options parse)."""
    answer = CliRunner().invoke(cli_app, [*args, "--help"])
    assert answer.exit_code == 0, (args, answer.output)
    assert "Usage: " in answer.output


def test_the_images_commands_are_the_clis() -> None:
    found = instructions()
    [entrypoint] = found["ENTRYPOINT"]
    [command] = found["CMD"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert json.loads(entrypoint) == ["tenantry"]
    assert scripts["tenantry"] == "tenantry.cli:main"
    assert json.loads(command) == ["serve"]
    commands = typer.main.get_command(cli_app).commands  # type: ignore[attr-defined]
    assert {"serve", "worker"} <= set(commands)
    args = {c["name"]: c["args"] for c in containers()}
    assert args == {"api": ["serve"], "worker": ["worker"]}
    for given in args.values():
        assert_runs(given)
    assert_runs(json.loads(command))
    for copied in found["COPY"]:
        source = copied.split()[0]
        if not source.startswith("--from"):
            assert (ROOT / source).exists(), source
    assert found["USER"] == ["10001:10001"]  # not root
    assert any("healthcheck.py" in h for h in found["HEALTHCHECK"])


def test_the_manifests_name_only_real_settings() -> None:
    known = setting_names()
    named: set[str] = set()
    for container in containers():
        named |= {e["name"] for e in container.get("env", [])}
    named |= set(one("ConfigMap", "tenantry")["data"])
    named |= set(one("Secret", "tenantry")["stringData"])
    assert named - known == set()
    assert {"TENANTRY_DATABASE_URL", "TENANTRY_API_TOKEN", "TENANTRY_ROOT_KEY_FILE"} <= named
    # a template, not a secret: every value asks to be replaced
    for name in ("tenantry", "tenantry-keys"):
        for key, value in one("Secret", name)["stringData"].items():
            assert "REPLACE_ME" in value, (name, key)


def test_the_autoscaling_files_agree() -> None:
    config = one("ConfigMap", "tenantry")["data"]
    hpa = one("HorizontalPodAutoscaler", "tenantry")["spec"]
    deployment = config["TENANTRY_AUTOSCALING_DEPLOYMENT"]
    assert one("Deployment", deployment)["spec"].get("replicas") is None  # the HPA owns them
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "tenantry",
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
        int(config["TENANTRY_AUTOSCALING_MIN_REPLICAS"]),
        int(config["TENANTRY_AUTOSCALING_MAX_REPLICAS"]),
    )
    [external] = [m["external"] for m in hpa["metrics"] if m["type"] == "External"]
    assert external["metric"] == {
        "name": RECOMMENDED_REPLICAS,
        "selector": {"matchLabels": {"deployment": deployment}},
    }
    assert external["target"] == {"type": "AverageValue", "averageValue": "1"}
    # the HPA and the service's own autoscaling never both write the replicas
    assert config["AUTO_SCALING_ENABLED"] == "false"
    assert (config["ENABLE_PREDICTIVE_SCALING"], config["TENANTRY_SCALING_ADVICE_METRIC"]) == (
        "true",
        "true",
    )
    # the advice's rounds read the scale: get on that Deployment's scale, nothing more
    [rule] = one("Role", "tenantry-scale")["rules"]
    assert rule == {
        "apiGroups": ["apps"],
        "resources": ["deployments/scale"],
        "resourceNames": [deployment],
        "verbs": ["get"],
    }
    binding = one("RoleBinding", "tenantry-scale")
    api_pod = one("Deployment", deployment)["spec"]["template"]["spec"]
    assert binding["subjects"][0]["name"] == api_pod["serviceAccountName"]
    assert api_pod["automountServiceAccountToken"] is True
    assert one("PodDisruptionBudget", "tenantry")["spec"]["minAvailable"] < hpa["minReplicas"]


async def test_the_probes_are_the_apps_public_routes(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    app = create_app(settings)
    routes = {path for path, methods in app.openapi()["paths"].items() if "get" in methods}
    probes = {
        probe["httpGet"]["path"]
        for container in containers()
        for key in ("startupProbe", "livenessProbe", "readinessProbe")
        if (probe := container.get(key))
    }
    assert probes == {"/health/live", "/health/ready"}
    assert probes <= routes
    for path in sorted(probes):  # a kubelet sends no credentials
        answer = await client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json()["status"] == "ok"
    [api] = [c for c in containers() if c.get("ports")]
    env = {e["name"]: e["value"] for e in api["env"]}
    assert api["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert (env["TENANTRY_PORT"], env["TENANTRY_HOST"]) == ("8000", "0.0.0.0")  # noqa: S104


def test_the_images_health_check_asks_serve_and_lets_the_worker_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = runpy.run_path(str(ROOT / "deploy" / "healthcheck.py"))["main"]
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("TENANTRY_PORT", str(port))  # nothing listens there once closed
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/opt/tenantry/bin/python\0/opt/tenantry/bin/tenantry\0worker\0")
    assert check(cmdline) == 0  # the worker: no HTTP server to ask
    cmdline.write_bytes(b"/opt/tenantry/bin/python\0/opt/tenantry/bin/tenantry\0serve\0")
    assert check(cmdline) == 1  # serve, and nothing answers

    class Live(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health/live" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Live)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TENANTRY_PORT", str(server.server_address[1]))
        assert check(cmdline) == 0  # serve, answering on its liveness route
    finally:
        server.shutdown()
        server.server_close()

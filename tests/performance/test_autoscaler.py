"""AUTO_SCALING_ENABLED: the service applies its own scaling advice to a Deployment through the
Kubernetes API's scale subresource, here a real HTTP server on loopback that answers as the API
does (``tests/support/kubernetes_api.py``)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest

from tenantry.api import create_app
from tenantry.audit.trail import trail_for
from tenantry.config import Settings, load_settings
from tenantry.context import PLATFORM_TENANT
from tenantry.db.engine import Database
from tenantry.errors import ConfigError, KubernetesApiError
from tenantry.performance import (
    AutoScaler,
    DeploymentScale,
    PerformanceManager,
    Scale,
    ScalingSpec,
)
from tenantry.performance.exposition import RECOMMENDED_REPLICAS, ScalingMetrics
from tests.conftest import TOKEN, NewTenant
from tests.performance.test_planning import recorded
from tests.support.kubernetes_api import KubernetesApi

NS, NAME = "shop", "tenantry"
SECRET = "sa-token-1"


@pytest.fixture
def api() -> Iterator[KubernetesApi]:
    with KubernetesApi(token=SECRET, deployments={(NS, NAME): 2}) as server:
        yield server


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(SECRET + "\n")
    return path


def scale_of(api: KubernetesApi, token_file: Path, **given: object) -> DeploymentScale:
    options: dict[str, object] = {"namespace": NS, "deployment": NAME, "token_file": token_file}
    return DeploymentScale(api.url, **{**options, **given})  # type: ignore[arg-type]


async def test_the_scale_subresource_is_read_and_patched_with_its_resource_version(
    api: KubernetesApi, token_file: Path
) -> None:
    scale = scale_of(api, token_file)
    try:
        found = await scale.get()
        assert found == Scale(2, 2, found.resource_version)
        changed = await scale.set(5, resource_version=found.resource_version)
        assert (changed.spec_replicas, changed.status_replicas) == (5, 5)
        assert changed.resource_version != found.resource_version
        patch = api.requests[1]
        assert patch.method == "PATCH"
        assert patch.path == f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}/scale"
        assert patch.headers["content-type"] == "application/merge-patch+json"
        assert patch.headers["authorization"] == f"Bearer {SECRET}"
        assert patch.body == {
            "spec": {"replicas": 5},
            "metadata": {"resourceVersion": found.resource_version},
        }
        # a decision on a state that changed meanwhile is refused: 409, nothing changed
        with pytest.raises(KubernetesApiError, match="409 Operation cannot be fulfilled") as e:
            await scale.set(7, resource_version=found.resource_version)
        assert e.value.status == 409
        assert api.deployment(NS, NAME).replicas == 5
        # the token is read again before each call (the kubelet rotates it)
        await asyncio.to_thread(token_file.write_text, "revoked")
        with pytest.raises(KubernetesApiError) as e:
            await scale.get()
        assert e.value.status == 401
    finally:
        await scale.close()
    await asyncio.to_thread(token_file.write_text, SECRET)
    missing = scale_of(api, token_file, deployment="nope")
    try:
        with pytest.raises(KubernetesApiError, match=r'404 deployments.apps "nope" not found'):
            await missing.get()
    finally:
        await missing.close()
    slow = scale_of(api, token_file, timeout=0.2)
    api.slow(1.0)
    try:
        with pytest.raises(KubernetesApiError, match="did not answer in time") as e:
            await slow.get()
    finally:
        await slow.close()
    assert e.value.status is None


def test_in_cluster_config_and_its_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(SECRET)
    (account / "namespace").write_text("prod\n")
    settings = load_settings(autoscaling_token_file=account / "token")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST"):
        DeploymentScale.from_settings(settings)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    found = DeploymentScale.from_settings(settings)
    assert str(found._client.base_url) == "https://10.0.0.1:6443"
    assert (found.namespace, found.deployment) == ("prod", "tenantry")
    own = load_settings(
        autoscaling_token_file=account / "token",
        autoscaling_api_url="http://127.0.0.1:1",
        autoscaling_namespace="shop",
        autoscaling_deployment="api",
    )
    found = DeploymentScale.from_settings(own)
    assert found.path == "/apis/apps/v1/namespaces/shop/deployments/api/scale"
    (account / "namespace").unlink()
    with pytest.raises(ConfigError, match="TENANTRY_AUTOSCALING_NAMESPACE"):
        DeploymentScale.from_settings(settings)


async def loaded_manager(db: Database, new_tenant: NewTenant) -> tuple[PerformanceManager, str]:
    """A performance manager with predictive scaling on, looking at a tenant with a week of
    requests (0.1 to 0.3 a second): advice of several pods at 0.05 a pod."""
    tenant = (await new_tenant("scale")).id
    now = await recorded(db, tenant, days=7)
    on = load_settings(enable_predictive_scaling=True)
    return PerformanceManager(db, settings=on, clock=lambda: now), tenant


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def platform_scale_entries(db: Database) -> list[dict[str, str]]:
    entries = await trail_for(db).audit_log.entries(PLATFORM_TENANT, limit=10_000)
    return [
        dict(e.entry.detail or {})
        for e in entries
        if e.entry and e.entry.action == "performance.scale"
    ]


async def test_advice_to_scale_up_patches_the_replicas_and_no_flapping_in_the_window(
    db: Database, new_tenant: NewTenant, api: KubernetesApi, token_file: Path
) -> None:
    performance, tenant = await loaded_manager(db, new_tenant)
    spec = ScalingSpec(min_replicas=1, max_replicas=20, target_per_pod=0.05)
    clock = Clock()
    scaler = AutoScaler(performance, scale_of(api, token_file), spec, tenant_id=tenant, clock=clock)
    try:
        first = await scaler.step()
        assert first.action == "scaled"
        assert first.current == 2
        assert first.replicas == first.advised
        assert 3 <= first.replicas <= 20
        assert api.deployment(NS, NAME).replicas == first.replicas
        assert len(api.patches()) == 1
        again = await scaler.step()  # the advice holds: nothing to change
        assert (again.action, len(api.patches())) == ("unchanged", 1)
        # someone scales it back down; within the window the autoscaler does not fight back
        api.set_replicas(NS, NAME, 2)
        clock.now += 120
        held = await scaler.step()
        assert held.action == "held"
        assert "within the 300 s window" in held.reason
        assert (api.deployment(NS, NAME).replicas, len(api.patches())) == (2, 1)
        clock.now += 181  # past the window: one more change
        second = await scaler.step()
        assert second.action == "scaled"
        assert api.deployment(NS, NAME).replicas == second.replicas > 2
        assert len(api.patches()) == 2
    finally:
        await scaler.close()
    audited = [e for e in await platform_scale_entries(db) if e.get("namespace") == NS]
    assert [(e["from"], e["to"]) for e in audited[-2:]] == [
        ("2", str(first.replicas)),
        ("2", str(second.replicas)),
    ]
    status = scaler.status()
    assert (status.enabled, status.deployment, status.last_action) == (True, NAME, "scaled")


async def test_api_errors_are_counted_and_the_loop_backs_off_and_goes_on(
    db: Database, new_tenant: NewTenant, api: KubernetesApi, token_file: Path
) -> None:
    performance, tenant = await loaded_manager(db, new_tenant)
    spec = ScalingSpec(min_replicas=1, max_replicas=20, target_per_pod=0.05)
    scale = scale_of(api, token_file, timeout=0.3)
    scaler = AutoScaler(performance, scale, spec, interval=0.05, tenant_id=tenant)
    api.fail(503)
    api.fail(403)
    api.fail(404)
    api.slow(1.0)  # a timeout
    scaler.start()
    try:
        async with asyncio.timeout(30):
            while scaler.last is None:  # noqa: ASYNC110 - the loop's task sets it
                await asyncio.sleep(0.05)
    finally:
        await scaler.close()
    assert scaler.errors == {"http_503": 1, "http_403": 1, "http_404": 1, "timeout": 1}
    gets = [r.at for r in api.requests if r.method == "GET"]
    gaps = [b - a for a, b in itertools.pairwise(gets)][:4]
    # each failure doubles the wait: 0.1, 0.2, 0.4 s, then 0.8 s after the timeout's answer
    assert [round(g, 2) >= w for g, w in zip(gaps, (0.1, 0.2, 0.4, 0.8), strict=True)] == [True] * 4
    assert scaler.last.action == "scaled"
    assert api.deployment(NS, NAME).replicas == scaler.last.replicas > 2
    assert scaler.next_wait() == 0.05  # a success resets the back-off


async def test_a_deployment_scaled_to_zero_or_without_load_history_is_left_alone(
    db: Database, new_tenant: NewTenant, api: KubernetesApi, token_file: Path
) -> None:
    quiet = (await new_tenant("scale")).id  # no requests at all
    on = load_settings(enable_predictive_scaling=True)
    performance = PerformanceManager(db, settings=on)
    spec = ScalingSpec(min_replicas=1, max_replicas=20, target_per_pod=0.05)
    scaler = AutoScaler(performance, scale_of(api, token_file), spec, tenant_id=quiet)
    try:
        held = await scaler.step()
        assert (held.action, held.reason) == ("held", "no load history")
        api.set_replicas(NS, NAME, 0)
        stopped = await scaler.step()
        assert (stopped.action, stopped.reason) == ("held", "scaled to zero")
    finally:
        await scaler.close()
    assert api.patches() == []


async def test_off_by_default_nothing_runs(client: httpx.AsyncClient) -> None:
    app: FastAPI = client._transport.app  # type: ignore[attr-defined]
    assert app.state.tenantry.autoscaler is None
    answer = await client.get("/performance/autoscaler", headers=TOKEN)
    assert answer.status_code == 200
    assert answer.json()["enabled"] is False
    assert (await client.get("/performance/autoscaler")).status_code == 401


async def last_action(client: httpx.AsyncClient) -> str | None:
    answer = await client.get("/performance/autoscaler", headers=TOKEN)
    found: str | None = answer.json()["last_action"]
    return found


async def test_on_the_service_scales_its_deployment_in_the_background(
    settings: Settings, api: KubernetesApi, token_file: Path
) -> None:
    """The app's lifespan starts the loop; the status route shows its rounds."""
    on = settings.model_copy(
        update={
            "auto_scaling_enabled": True,
            "enable_predictive_scaling": True,
            "autoscaling_api_url": api.url,
            "autoscaling_token_file": token_file,
            "autoscaling_namespace": NS,
            "autoscaling_deployment": NAME,
            "autoscaling_interval": 0.1,
        }
    )
    app = create_app(on)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            async with asyncio.timeout(30):
                while not [r for r in api.requests if r.method == "GET"]:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)  # the server's thread receives it
                while not await last_action(client):  # noqa: ASYNC110 - the app's loop sets it
                    await asyncio.sleep(0.05)
            status = (await client.get("/performance/autoscaler", headers=TOKEN)).json()
    assert status["enabled"] is True
    assert (status["namespace"], status["deployment"]) == (NS, NAME)
    assert status["last_action"] in {"scaled", "unchanged", "held"}
    assert status["errors"] == {}


async def test_one_process_leads_and_another_takes_over_when_it_stops(
    db: Database, new_tenant: NewTenant, api: KubernetesApi, token_file: Path
) -> None:
    performance, tenant = await loaded_manager(db, new_tenant)
    spec = ScalingSpec(min_replicas=1, max_replicas=20, target_per_pod=0.05)
    first, second = (
        AutoScaler(performance, scale_of(api, token_file), spec, tenant_id=tenant, clock=Clock())
        for _ in range(2)
    )
    try:
        led = await first.step()
        assert (led.action, first.leading) == ("scaled", True)
        api.set_replicas(NS, NAME, 2)
        follower = await second.step()  # another process: it holds, whatever the advice
        assert (follower.action, follower.reason) == (
            "held",
            "another process leads the autoscaling",
        )
        assert not second.leading
        assert len(api.patches()) == 1
        await first.close()  # the leader stops: its lock goes with its connection
        took_over = await second.step()
        assert (took_over.action, second.leading) == ("scaled", True)
        assert len(api.patches()) == 2
    finally:
        await first.close()
        await second.close()


async def test_for_an_hpa_the_advice_is_published_as_a_gauge_and_never_applied(
    db: Database, new_tenant: NewTenant, api: KubernetesApi, token_file: Path
) -> None:
    """TENANTRY_SCALING_ADVICE_METRIC: the rounds run with apply=False; the gauge carries the
    advice, the Deployment is only read."""
    performance, tenant = await loaded_manager(db, new_tenant)
    spec = ScalingSpec(min_replicas=1, max_replicas=20, target_per_pod=0.05)
    registry = CollectorRegistry()

    def published() -> float | None:
        return registry.get_sample_value(RECOMMENDED_REPLICAS, {"deployment": NAME})

    advisor = AutoScaler(
        performance,
        scale_of(api, token_file),
        spec,
        tenant_id=tenant,
        clock=Clock(),
        apply=False,
        metrics=ScalingMetrics(registry),
    )
    try:
        assert published() is None  # no round yet: no series
        first = await advisor.step()
        assert first.action == "advised"
        assert first.advised is not None
        assert 3 <= first.advised <= 20  # a rise from 2 (the applying test scales to it)
        assert (first.current, first.replicas) == (2, 2)
        assert published() == first.advised
        again = await advisor.step()  # no stabilization window of its own: the HPA has one
        assert (again.action, published()) == ("advised", first.advised)
        assert api.patches() == []
        assert api.deployment(NS, NAME).replicas == 2
        status = advisor.status()
        assert (status.applies, status.last_action, status.advised) == (
            False,
            "advised",
            first.advised,
        )
        api.set_replicas(NS, NAME, 0)  # stopped on purpose: no advice, the series goes
        stopped = await advisor.step()
        assert (stopped.action, stopped.reason) == ("held", "scaled to zero")
        assert published() is None
        assert f"{RECOMMENDED_REPLICAS}{{" not in generate_latest(registry).decode()
    finally:
        await advisor.close()
    assert api.patches() == []
    # the applying autoscaler publishes what it applies, and withdraws it without history
    api.set_replicas(NS, NAME, 2)
    applying = AutoScaler(
        performance,
        scale_of(api, token_file),
        spec,
        tenant_id=tenant,
        clock=Clock(),
        metrics=ScalingMetrics(registry := CollectorRegistry()),
    )
    quiet = (await new_tenant("scale")).id
    try:
        scaled = await applying.step()
        assert scaled.action == "scaled"
        assert published() == scaled.replicas == api.deployment(NS, NAME).replicas
        applying.tenant_id = quiet  # no load history: nothing to advise
        held = await applying.step()
        assert (held.action, held.reason) == ("held", "no load history")
        assert published() is None
    finally:
        await applying.close()


async def test_the_service_publishes_its_advice_in_metrics_without_patching(
    settings: Settings, api: KubernetesApi, token_file: Path
) -> None:
    on = settings.model_copy(
        update={
            "scaling_advice_metric": True,
            "enable_predictive_scaling": True,
            "autoscaling_api_url": api.url,
            "autoscaling_token_file": token_file,
            "autoscaling_namespace": NS,
            "autoscaling_deployment": NAME,
            "autoscaling_interval": 0.1,
        }
    )
    app = create_app(on)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            async with asyncio.timeout(30):
                while not await last_action(client):  # noqa: ASYNC110 - the app's loop sets it
                    await asyncio.sleep(0.05)
            status = (await client.get("/performance/autoscaler", headers=TOKEN)).json()
            exposed = (await client.get("/metrics", headers=TOKEN)).text
    assert (status["enabled"], status["applies"]) == (True, False)
    # the process's own load: advised when the shared test database has history, else held
    assert status["last_action"] in {"advised", "held"}, status
    line = f'{RECOMMENDED_REPLICAS}{{deployment="{NAME}"}} {float(status["advised"] or 0)}'
    assert (line in exposed) == (status["last_action"] == "advised"), exposed[:2000]
    assert [r for r in api.requests if r.method == "GET"]
    assert api.patches() == []
